"""``make bench-gpu``: the figures that need a GPU, at the ImageNet model size.

MobileNetV2 α 1.0 at 224×224, mixed precision (``mixed_float16``):

* ``gpu_masking_overhead``: a masked training step / a dense one on the GPU (the
  ``masking_overhead`` benchmark at this size, batch 64, 1,000 classes). Lower is better;
  target 1.05.
* ``gpu_dense_round_vs_keras``: the dense stage's Elephas rounds on one GPU worker
  (reading and decoding the dataset in the task, batch 64) / plain Keras steps on the same
  images already in GPU memory, same batch (the ``distributed_vs_single`` benchmark at
  this size, ``on_device``). Higher is better; target 0.8.
* ``gpu_memory_estimate``: GPU memory each image adds to a training pass (TensorFlow's
  allocator peak, batch 32 against 96) / the estimate that picks ``train.micro_batch_size``
  (the ``memory_estimate`` benchmark at this size). Lower is better; target 1.0.
* ``gpu_slim_train_throughput``, ``gpu_slim_infer_throughput``: training and inference
  images/s of a slim channel ticket at 50% of the channels / those of the dense network,
  batch 64 in GPU memory (``deploy_latency.slim_throughput``). Higher is better; target 1.5.
* ``gpu_cell_vs_keras``: a grid cell's training images/s reading the ingested dataset in its
  Spark task / plain Keras ``fit`` on the same images already in memory, same batch (the
  ``cell_vs_keras`` benchmark at this size). Higher is better; target 0.8.

On a machine where TensorFlow sees no GPU it says so in one line and exits 0.
"""

from __future__ import annotations

import os
import sys
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# the driver's baseline and the Spark Python workers share the GPU in local mode
os.environ.setdefault("TF_FORCE_GPU_ALLOW_GROWTH", "true")

IMAGE_SIZE, ALPHA, BATCH, CLASSES = 224, 1.0, 64, 1000


def visible_gpus() -> list[str]:
    import tensorflow as tf

    return [d.name for d in tf.config.list_physical_devices("GPU")]


def renamed(result: dict[str, Any], name: str, target: float) -> dict[str, Any]:
    return {**result, "name": name, "target": target}


def run(repetitions: int = 3) -> list[dict[str, Any]]:
    from benchmarks.cell_vs_keras import bench as cell_vs_keras
    from benchmarks.deploy_latency import bench as deploy_latency
    from benchmarks.distributed_training import bench as distributed
    from benchmarks.harness.common import make_result
    from benchmarks.masking_overhead import bench as masking_overhead
    from benchmarks.memory_estimate import bench as memory_estimate

    memory = memory_estimate.run(small=32, large=96, repetitions=repetitions,
                                 image_size=IMAGE_SIZE, mixed_precision=True,
                                 name="gpu_memory_estimate")[0]
    masked = masking_overhead.run(
        repetitions=repetitions, steps_per_repetition=20,
        inputs={"alpha": ALPHA, "image_size": IMAGE_SIZE, "classes": CLASSES,
                "batch_size": BATCH, "mixed_precision": True, "gpus": visible_gpus()})
    step = next(r for r in masked if r["name"] == "masking_overhead")
    speed = distributed.throughput(train=2048, val=64, repetitions=repetitions,
                                   batch_size=BATCH, images_per_task=1024,
                                   image_size=IMAGE_SIZE, alpha=ALPHA, workers=1,
                                   mixed_precision=True, on_device=True)
    dense = make_result("gpu_dense_round_vs_keras", speed["distributed"], speed["single"],
                        target=0.8, better="higher", unit="images/s", inputs=speed["inputs"])
    cell = cell_vs_keras.run(train=4096, val=256, image_size=IMAGE_SIZE, epochs=(1, 3),
                             repetitions=repetitions, alpha=ALPHA, mixed_precision=True)[0]
    slim = deploy_latency.slim_throughput(image_size=IMAGE_SIZE, alpha=ALPHA, batch=BATCH,
                                          mixed_precision=True, repetitions=repetitions)
    return [renamed(step, "gpu_masking_overhead", 1.05), dense, memory,
            renamed(cell, "gpu_cell_vs_keras", 0.8),
            *(renamed(r, f"gpu_slim_{r['name'].split('_')[1]}_throughput", 1.5) for r in slim)]


def main() -> int:
    gpus = visible_gpus()
    if not gpus:
        print("bench-gpu: TensorFlow sees no GPU on this machine; nothing measured")
        return 0
    print(f"bench-gpu: {', '.join(gpus)}", flush=True)
    from benchmarks.harness.common import bench_main

    bench_main(run, {"repetitions": 1})
    return 0


if __name__ == "__main__":
    sys.exit(main())
