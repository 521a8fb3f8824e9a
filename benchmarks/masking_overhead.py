"""Cost of masked training: masked / dense train-step time, and the naive approach vs ours.

Model: MobileNetV2 (alpha 0.35, 64x64, 10 classes, ``weights=None``), batch 32, SGD with
momentum, half of every kernel masked (the cost does not depend on the sparsity).

* ``masking_overhead``: median train-step time of our masked model (mask applied in the
  forward pass + mask constraint after each optimizer step) / the same for the plain
  dense model. Lower is better.
* ``masking_vs_naive``: the naive alternative trains the plain model and re-assigns every
  kernel to ``kernel * mask`` after each batch (one eager ``assign`` per kernel). Reported
  as naive step time / our step time; higher is better.

Steps are timed with ``train_on_batch`` after a warm-up; the three variants are
interleaved in every repetition so background load hits them alike. ``ratio`` is the
median of the per-repetition ratios, ``value``/``baseline`` the median step times and
``spread`` (max - min) / median of the per-repetition ratios. ``inputs`` also gives each
variant's median time above dense (the masking cost alone).
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from keras import ops  # noqa: E402

from pipeline.models import create_model  # noqa: E402
from pipeline.tickets import masked_layers, set_masks, to_masked  # noqa: E402

INPUTS = {"model": "mobilenet_v2", "alpha": 0.35, "image_size": 64, "classes": 10,
          "batch_size": 32, "optimizer": "SGD(0.01, momentum=0.9)", "density": 0.5}


def _compile(model: keras.Model) -> keras.Model:
    model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9),
                  loss="sparse_categorical_crossentropy")
    return model


def _variants() -> tuple[dict[str, Callable[[], None]], dict[str, int]]:
    rng = np.random.default_rng(0)
    size, batch = INPUTS["image_size"], INPUTS["batch_size"]
    x = rng.uniform(0, 255, (batch, size, size, 3)).astype("float32")
    y = rng.integers(0, INPUTS["classes"], batch).astype("int32")

    def build() -> keras.Model:
        return create_model("mobilenet_v2", image_size=size, classes=INPUTS["classes"],
                            alpha=INPUTS["alpha"], seed=0)

    dense = _compile(build())
    ours = to_masked(build())
    masks = {layer.name: rng.random(tuple(layer.kernel.shape)) < INPUTS["density"]
             for layer in masked_layers(ours)}
    set_masks(ours, masks)
    _compile(ours)
    naive = _compile(build())
    pairs = []
    for name, mask in masks.items():
        kernel = naive.get_layer(name).kernel
        pairs.append((kernel, ops.convert_to_tensor(mask.astype("float32"))))
        kernel.assign(kernel.numpy() * mask)

    def naive_step() -> None:
        naive.train_on_batch(x, y)
        for kernel, mask in pairs:
            kernel.assign(ops.multiply(kernel, mask))

    steps = {
        "dense": lambda: dense.train_on_batch(x, y),
        "ours": lambda: ours.train_on_batch(x, y),
        "naive": naive_step,
    }
    return steps, {"masked_kernels": len(masks)}


def _time(step: Callable[[], None], count: int) -> float:
    start = time.perf_counter()
    for _ in range(count):
        step()
    return (time.perf_counter() - start) / count


def run(repetitions: int = 5, steps_per_repetition: int = 10, warmup: int = 3) -> list[dict]:
    """Time the three variants and return the two result dicts."""
    steps, extra = _variants()
    for step in steps.values():
        _time(step, warmup)
    times: dict[str, list[float]] = {name: [] for name in steps}
    for rep in range(repetitions):
        order = list(steps) if rep % 2 == 0 else list(reversed(steps))
        for name in order:
            times[name].append(_time(steps[name], steps_per_repetition))
    med = {name: statistics.median(values) for name, values in times.items()}

    def ratios(num: str, den: str) -> list[float]:
        return [a / b for a, b in zip(times[num], times[den], strict=True)]

    def spread(num: str, den: str) -> float:
        values = ratios(num, den)
        return (max(values) - min(values)) / statistics.median(values)

    # Extra context: the masking cost alone (step time above dense), paired per repetition.
    overhead = {name: statistics.median(a - b for a, b in zip(times[name], times["dense"],
                                                                 strict=True))
                for name in ("ours", "naive")}
    inputs = {**INPUTS, **extra, "steps_per_repetition": steps_per_repetition,
              "warmup_steps": warmup,
              "step_ms": {name: [round(t * 1e3, 2) for t in values]
                          for name, values in times.items()},
              "overhead_ms_over_dense": {k: round(v * 1e3, 2) for k, v in overhead.items()}}
    return [
        {
            "name": "masking_overhead",
            "ratio": statistics.median(ratios("ours", "dense")),
            "target": 1.10,
            "better": "lower",
            "value": med["ours"] * 1e3,
            "unit": "ms/step",
            "baseline": med["dense"] * 1e3,
            "repetitions": repetitions,
            "spread": spread("ours", "dense"),
            "inputs": inputs,
        },
        {
            "name": "masking_vs_naive",
            "ratio": statistics.median(ratios("naive", "ours")),
            "target": 2.0,
            "better": "higher",
            "value": med["naive"] * 1e3,
            "unit": "ms/step",
            "baseline": med["ours"] * 1e3,
            "repetitions": repetitions,
            "spread": spread("naive", "ours"),
            "inputs": inputs,
        },
    ]


QUICK = {"repetitions": 3, "steps_per_repetition": 5}

if __name__ == "__main__":
    from common import bench_main

    bench_main(run, QUICK)
