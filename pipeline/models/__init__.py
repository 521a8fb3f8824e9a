"""Model registry: ``create_model(name, image_size=..., classes=...)`` and ``list_models()``.

Input scaling: every model takes float32 pixel values in 0..255 (decoded uint8 images cast
to float, nothing else) and scales them itself with a ``Rescaling`` layer: to [-1, 1] for
``mobilenet_v2`` (its ``preprocess_input``), to [0, 1] for ``lenet_300_100`` and ``conv4``.
Callers therefore never preprocess. Outputs are softmax probabilities unless
``classifier_activation=None`` is passed (then logits). The classifier layer is always
named ``predictions``. Weights are never pretrained (``weights=None``).

Registered: ``mobilenet_v2`` (keras.applications.MobileNetV2; ``alpha``, any
``image_size >= 32``), ``lenet_300_100`` and ``conv4`` (Frankle & Carbin's small networks).
The same ``seed`` gives bit-identical initial weights.
"""

from pipeline.models import mobilenet_v2 as _mobilenet_v2  # noqa: F401  (registers)
from pipeline.models import small_nets as _small_nets  # noqa: F401  (registers)
from pipeline.models.registry import CLASSIFIER, create_model, list_models, register_model
from pipeline.models.spec import ModelSpec

__all__ = ["CLASSIFIER", "ModelSpec", "create_model", "list_models", "register_model"]
