"""The training-memory estimate against the memory a training pass really takes.

Settings: MobileNetV2 α 1.0 at ``IMAGE_SIZE`` px, 1000 classes, SGD with momentum, float32
(the CPU has no float16 kernels worth timing; ``make bench-gpu`` runs it at 224 px in
``mixed_float16``). Each repetition runs a child process per
batch size: it builds and compiles the model, takes ``STEPS`` ``train_on_batch`` steps, and
reports its peak resident memory. The slope between the two batch sizes is the memory each
image adds (the model, TensorFlow and Python cancel out); the estimate's ``per_image_bytes``
(:mod:`pipeline.train.memory`) is the baseline. On a GPU the same slope would read
TensorFlow's allocator peak; on this CPU it is the process's (``ru_maxrss``), which also
holds the host copies of the batch.

* ``memory_estimate_per_image``: measured bytes per image / estimated bytes per image.
  Target ≤ 1.0: the estimate, which picks ``train.micro_batch_size``, must not undercount.
  ``inputs`` has both peaks of every repetition.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

from benchmarks.harness.common import ROOT, make_result

IMAGE_SIZE = 128
STEPS = 3

CHILD = """
import json, resource, sys
import numpy as np
import keras
from pipeline.experiment.settings import TrainSettings
from pipeline.models.spec import ModelSpec
from pipeline.train.memory import estimate_training_memory
from pipeline.train.optimizers import make_loss, make_optimizer

import tensorflow as tf
batch, size, steps, mixed = (int(a) for a in sys.argv[1:5])
gpu = bool(tf.config.list_physical_devices("GPU"))
if gpu:
    tf.config.experimental.set_memory_growth(tf.config.list_physical_devices("GPU")[0], True)
if mixed:
    keras.mixed_precision.set_global_policy("mixed_float16")
train = TrainSettings(batch_size=batch, momentum=0.9, mixed_precision=bool(mixed))
model = ModelSpec("mobilenet_v2", size, 1000, alpha=1.0).build()
model.compile(optimizer=make_optimizer(train, 100), loss=make_loss(0.0))
rng = np.random.default_rng(0)
x = rng.integers(0, 255, (batch, size, size, 3), dtype=np.uint8)
y = np.eye(1000, dtype=np.float32)[rng.integers(0, 1000, batch)]
for _ in range(steps):
    model.train_on_batch(x, y)
if gpu:
    peak = tf.config.experimental.get_memory_info("GPU:0")["peak"]
else:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print("RESULT " + json.dumps({"peak": peak,
      "estimate": estimate_training_memory(model, train).per_image_bytes}))
"""


def _peak(batch: int, image_size: int, mixed: bool) -> dict[str, int]:
    env = dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="3")
    args = [str(batch), str(image_size), str(STEPS), str(int(mixed))]
    out = subprocess.run([sys.executable, "-c", CHILD, *args],
                         capture_output=True, text=True, env=env, check=True, cwd=ROOT).stdout
    line = next(x for x in out.splitlines() if x.startswith("RESULT "))
    return json.loads(line.removeprefix("RESULT "))


def run(small: int = 8, large: int = 40, repetitions: int = 3, image_size: int = IMAGE_SIZE,
        mixed_precision: bool = False, name: str = "memory_estimate_per_image"
        ) -> list[dict[str, Any]]:
    """The figure; ``make bench-gpu`` calls it at 224 px in mixed precision on the GPU."""
    measured, estimated, peaks = [], [], []
    for rep in range(repetitions):
        low = _peak(small, image_size, mixed_precision)
        high = _peak(large, image_size, mixed_precision)
        measured.append((high["peak"] - low["peak"]) / (large - small))
        estimated.append(float(high["estimate"]))
        peaks.append([low["peak"], high["peak"]])
        print(f"memory_estimate: repetition {rep + 1}/{repetitions}: "
              f"{measured[-1] / 2**20:.1f} MiB per image measured, "
              f"{estimated[-1] / 2**20:.1f} MiB estimated", flush=True)
    inputs = {"model": "mobilenet_v2 alpha 1.0", "image_size": image_size, "precision":
              "mixed_float16" if mixed_precision else "float32", "batches": [small, large],
              "steps": STEPS, "peak_bytes": peaks}
    return [make_result(name, measured, estimated, target=1.0,
                        better="lower", unit="bytes per image", inputs=inputs)]


QUICK = {"small": 4, "large": 12, "repetitions": 1}

if __name__ == "__main__":
    from benchmarks.harness.common import bench_main

    bench_main(run, QUICK)
