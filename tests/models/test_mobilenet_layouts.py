"""MobileNetV2's two layouts: keras.applications' and the one XNNPACK's sparse path accepts."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from pipeline.config import ConfigError
from pipeline.models.registry import create_model
from pipeline.models.spec import ModelSpec
from tests.support.deploy_nets import assert_varies_with_the_image, random_batchnorm
from tests.support.job_settings import tiny_settings


def _pair(alpha: float = 0.35, size: int = 32) -> tuple[keras.Model, keras.Model]:
    return tuple(create_model("mobilenet_v2", image_size=size, classes=10, alpha=alpha,
                              layout=layout) for layout in ("keras", "xnnpack"))


@pytest.mark.parametrize(("alpha", "size"), [(0.35, 32), (1.0, 96), (0.5, 33)])
def test_the_layouts_share_names_and_shapes(alpha, size) -> None:
    stock, ours = _pair(alpha, size)
    assert [(w.path, tuple(w.shape)) for w in stock.weights] == \
        [(w.path, tuple(w.shape)) for w in ours.weights]
    assert [layer.name for layer in ours.layers if layer.name != "Conv1_pad"] == \
        [layer.name for layer in stock.layers]
    assert ours.get_layer("Conv1_pad").padding == ((1, 1), (1, 1))
    assert ours.get_layer("Conv1").padding == "valid" and stock.get_layer("Conv1").padding == "same"
    assert ours.get_layer("Conv1").output.shape == stock.get_layer("Conv1").output.shape


def test_past_the_first_convolution_they_compute_the_same_function() -> None:
    """With the same weights, the rest of the network (blocks, pads, adds, head) gives the
    same logits from the same first activations: the hand-built blocks are Keras'."""
    stock, ours = _pair()
    random_batchnorm(stock, np.random.default_rng(2))  # else every image gets equal logits
    ours.set_weights(stock.get_weights())
    rest = [keras.Model(m.get_layer("Conv1_relu").output, m.output) for m in (stock, ours)]
    x = np.random.default_rng(0).uniform(0, 6, (4, 16, 16, 16)).astype("float32")
    expected = np.asarray(rest[0](x))
    assert_varies_with_the_image(expected)
    np.testing.assert_allclose(rest[1](x), expected, atol=1e-6)
    images = np.random.default_rng(1).uniform(0, 255, (4, 32, 32, 3)).astype("float32")
    assert np.abs(np.asarray(ours(images)) - np.asarray(stock(images))).max() > 1e-4


def test_the_tflite_file_pads_one_pixel_each_side_and_ends_in_a_mean() -> None:
    from ai_edge_litert.interpreter import Interpreter

    from pipeline.export.tflite import to_tflite

    ops = {}
    for model in _pair():
        interpreter = Interpreter(model_content=to_tflite(model, sparse=False))
        ops[model.name] = details = interpreter._get_ops_details()
        names = [op["op_name"] for op in details]
        assert names[-3:] == ["MEAN", "FULLY_CONNECTED", "SOFTMAX"], names
        if model.name.endswith("_xnnpack"):
            pad = details[names.index("PAD")]
            assert names.index("PAD") + 1 == names.index("CONV_2D")
            paddings = interpreter.get_tensor(pad["inputs"][1])
            np.testing.assert_array_equal(paddings, [[0, 0], [1, 1], [1, 1], [0, 0]])
        else:
            assert "PAD" not in names[:names.index("CONV_2D")]


def test_layout_reaches_the_spec_and_is_checked(tmp_path) -> None:
    spec = ModelSpec("mobilenet_v2", 32, 10, alpha=0.35, layout="xnnpack")
    assert "Conv1_pad" in {layer.name for layer in spec.build().layers}
    assert ModelSpec(**spec.to_dict()) == spec
    settings = tiny_settings(str(tmp_path), str(tmp_path), "model.layout=xnnpack")
    assert settings.model.layout == "xnnpack"
    with pytest.raises(ConfigError, match="layout.*not of conv4"):
        tiny_settings(str(tmp_path), str(tmp_path), "model.layout=xnnpack", "model.name=conv4")
    with pytest.raises(ConfigError, match="layout"):
        tiny_settings(str(tmp_path), str(tmp_path), "model.layout=tflite")
