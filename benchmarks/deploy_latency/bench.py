"""Latency and file size of deployed tickets: batch 1, one thread, side by side in one process.

Model: MobileNetV2 (alpha 1.0, 224×224, 1000 classes, ``weights=None``, every weight
perturbed so that nothing compresses better than trained weights would). Variants, each
exported the way ``jobs/export_ticket.py`` exports a cell:

* dense Keras: the plain model called through a ``tf.function`` (no Python per layer);
* dense TFLite: the same model converted without sparse storage (the baseline of every ratio);
* sparse TFLite: an unstructured ticket (layerwise magnitude pruning, 10% of every prunable
  kernel left, the output layer's too) converted with ``Optimize.EXPERIMENTAL_SPARSITY``;
* slim TFLite at 50% and 25% of the channels: channel tickets (``prune.granularity:
  channels``, one-shot to that density in every prunable channel space) slimmed with
  ``pipeline.export.slim`` and converted like the sparse ticket.

TensorFlow and the TFLite interpreters run on one thread. One repetition times every variant
``calls`` times in turn (after ``warmup`` untimed calls each) and takes each one's median;
the ratios are per repetition, so drift of the machine between repetitions cancels.

* ``deploy_latency_sparse``: sparse TFLite ms ÷ dense TFLite ms (target 1.0: XNNPACK has
  no sparse kernels on x86 with AVX, so the honest expectation is "no faster");
* ``deploy_latency_slim50``, ``deploy_latency_slim25``: slim TFLite ms ÷ dense TFLite ms
  (targets 0.7 and 0.45: fewer channels are fewer multiply-adds on every CPU);
* ``deploy_size_sparse``: sparse file bytes ÷ dense file bytes (target 0.3);
* ``deploy_latency_keras``: dense Keras ms ÷ dense TFLite ms (context: what TFLite saves).
"""

from __future__ import annotations

import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

tf.config.threading.set_intra_op_parallelism_threads(1)
tf.config.threading.set_inter_op_parallelism_threads(1)

from benchmarks.harness.common import make_result  # noqa: E402
from pipeline.export.slim import slim_model  # noqa: E402
from pipeline.export.tflite import TFLiteModel, to_tflite  # noqa: E402
from pipeline.models import create_model  # noqa: E402
from pipeline.tickets import PruningPolicy, one_shot_masks, set_masks, to_masked, to_plain  # noqa: E402
from pipeline.tickets.flops import count_flops  # noqa: E402

INPUTS = {"model": "mobilenet_v2", "alpha": 1.0, "image_size": 224, "classes": 1000,
          "batch": 1, "threads": 1, "weights": "init × noise"}
QUICK = {"image_size": 96, "alpha": 0.35, "repetitions": 2, "calls": 5}


def _model(image_size: int, alpha: float):  # noqa: ANN202
    plain = create_model("mobilenet_v2", image_size=image_size, classes=INPUTS["classes"],
                         alpha=alpha, seed=0)
    rng = np.random.default_rng(0)
    plain.set_weights([(w * rng.uniform(0.5, 1.5, w.shape) + rng.normal(0, 0.01, w.shape))
                       .astype(w.dtype) for w in plain.get_weights()])
    return plain


def _ticket(plain, policy: PruningPolicy, sparsity: float):  # noqa: ANN001, ANN202
    masked = to_masked(plain)
    set_masks(masked, one_shot_masks(masked, policy, sparsity))
    return to_plain(masked)


def _median_ms(fn, x: np.ndarray, calls: int) -> float:  # noqa: ANN001
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        fn(x)
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def run(repetitions: int = 5, calls: int = 20, warmup: int = 3, image_size: int = 224,
        alpha: float = 1.0) -> list[dict]:
    plain = _model(image_size, alpha)
    unstructured = _ticket(plain, PruningPolicy(strategy="layerwise", classifier_fraction=0.2),
                           0.9)
    channels = PruningPolicy(strategy="layerwise", granularity="channels")
    slim = {keep: slim_model(_ticket(plain, channels, 1 - keep)) for keep in (0.5, 0.25)}
    files = {
        "dense_tflite": to_tflite(plain, sparse=False),
        "sparse_tflite": to_tflite(unstructured, sparse=True),
        "slim50_tflite": to_tflite(slim[0.5].model, sparse=True),
        "slim25_tflite": to_tflite(slim[0.25].model, sparse=True),
    }
    runners = {name: TFLiteModel(content, threads=1) for name, content in files.items()}
    keras_call = tf.function(lambda x: plain(x, training=False))
    variants = {"dense_keras": keras_call, **runners}
    x = np.random.default_rng(1).uniform(0, 255, (1, image_size, image_size, 3)).astype(
        "float32")
    for fn in variants.values():
        for _ in range(warmup):
            fn(x)
    timings: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(repetitions):
        for name, fn in variants.items():
            timings[name].append(_median_ms(fn, x, calls))
    inputs = {
        **INPUTS, "image_size": image_size, "alpha": alpha, "calls": calls,
        "file_bytes": {name: len(content) for name, content in files.items()},
        "median_ms": {name: round(statistics.median(t), 3) for name, t in timings.items()},
        "runtime": {name: r.runtime for name, r in runners.items()},
        "flops": {
            "dense": count_flops(plain).dense_flops,
            "sparse": count_flops(unstructured).flops_remaining,
            **{f"slim{int(100 * k)}": count_flops(s.model).flops_remaining
               for k, s in slim.items()},
        },
        "slim_parameters": {f"slim{int(100 * k)}": s.parameters_after for k, s in slim.items()},
        "dense_parameters": plain.count_params(),
    }
    base = timings["dense_tflite"]
    results = [
        make_result("deploy_latency_sparse", timings["sparse_tflite"], base, 1.0, "lower", "ms",
                    inputs),
        make_result("deploy_latency_slim50", timings["slim50_tflite"], base, 0.7, "lower", "ms",
                    inputs),
        make_result("deploy_latency_slim25", timings["slim25_tflite"], base, 0.45, "lower",
                    "ms", inputs),
        make_result("deploy_latency_keras", timings["dense_keras"], base, 1.0, "lower", "ms",
                    inputs),
    ]
    size = len(files["sparse_tflite"]) / len(files["dense_tflite"])
    results.append({
        "name": "deploy_size_sparse", "ratio": size, "target": 0.3, "better": "lower",
        "value": len(files["sparse_tflite"]), "unit": "bytes",
        "baseline": len(files["dense_tflite"]), "repetitions": 1, "spread": 0.0,
        "inputs": inputs,
    })
    return results


def slim_throughput(image_size: int = 224, alpha: float = 1.0, batch: int = 64,
                    steps: int = 20, keep: float = 0.5, mixed_precision: bool = False,
                    repetitions: int = 3) -> list[dict]:
    """Training and inference images/s of the slim channel ticket at ``keep`` of the
    channels ÷ those of the dense network, in Keras on whatever device TensorFlow picks
    (``make bench-gpu`` runs it on the GPU), the batch already in device memory."""
    import keras

    if mixed_precision:
        keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        plain = _model(image_size, alpha)
        channels = PruningPolicy(strategy="layerwise", granularity="channels")
        slim = slim_model(_ticket(plain, channels, 1 - keep)).model
        rng = np.random.default_rng(2)
        x = tf.constant(rng.uniform(0, 255, (batch, image_size, image_size, 3)), "float32")
        y = tf.constant(rng.integers(0, INPUTS["classes"], batch))
        rates: dict[str, dict[str, list[float]]] = {}
        for name, model in (("dense", plain), ("slim", slim)):
            model = keras.models.clone_model(model)
            model.compile(optimizer=keras.optimizers.SGD(0.01),
                          loss="sparse_categorical_crossentropy")
            infer = tf.function(lambda images, m=model: m(images, training=False))
            model.train_on_batch(x, y)
            infer(x)
            rates[name] = {"train": [], "infer": []}
            for _ in range(repetitions):
                start = time.perf_counter()
                for _ in range(steps):
                    model.train_on_batch(x, y)
                rates[name]["train"].append(steps * batch / (time.perf_counter() - start))
                start = time.perf_counter()
                for _ in range(steps):
                    infer(x).numpy()
                rates[name]["infer"].append(steps * batch / (time.perf_counter() - start))
    finally:
        keras.mixed_precision.set_global_policy("float32")
    inputs = {**INPUTS, "image_size": image_size, "alpha": alpha, "batch": batch,
              "steps": steps, "keep_channels": keep, "mixed_precision": mixed_precision,
              "devices": [d.name for d in tf.config.list_physical_devices()],
              "slim_parameters": slim.count_params(), "dense_parameters": plain.count_params()}
    return [make_result(f"slim{int(100 * keep)}_{kind}_throughput", rates["slim"][kind],
                        rates["dense"][kind], 1.5, "higher", "images/s", inputs)
            for kind in ("train", "infer")]


if __name__ == "__main__":
    from benchmarks.harness.common import bench_main

    bench_main(run, quick=QUICK)
