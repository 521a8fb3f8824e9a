"""The micro-batch of a run on GPU executors: chosen once, on the driver, before the run
directory is named.

With ``train.micro_batch_size: 0`` on executors that have GPUs, one task per task slot
reads its GPU's memory (``nvidia-smi``), and the smallest is compared with the memory estimate
of a ``train.batch_size`` pass (:mod:`pipeline.train.memory`). Where it does not fit, the
setting becomes the largest divisor that does: every model of the run (the dense stage and
each cell) then takes the same accumulated steps, and since the setting is part of the run
directory's name, such a run never resumes one trained in whole batches. Without GPUs, or
with the setting given, nothing changes.
"""

from __future__ import annotations

import logging
import shutil
import subprocess

from pipeline.experiment.settings import PruneJobSettings
from pipeline.models.spec import ModelSpec
from pipeline.train.memory import GIB, estimate_training_memory, fitting_micro_batch

log = logging.getLogger(__name__)

MIB = 2**20


def gpu_memory_bytes(address: str) -> int | None:
    """Total memory of GPU ``address`` by ``nvidia-smi``; None where it cannot be read."""
    tool = shutil.which("nvidia-smi")
    if tool is None:
        return None
    try:
        out = subprocess.run(
            [tool, "--query-gpu=memory.total", "--format=csv,noheader,nounits", "-i", address],
            capture_output=True, text=True, timeout=30, check=True).stdout
        return int(float(out.strip().splitlines()[0])) * MIB
    except (subprocess.SubprocessError, OSError, ValueError, IndexError):
        return None


def _task_gpu_memory(_rows) -> list[int | None]:  # noqa: ANN001 - a partition's iterator
    from pipeline.train.devices import assigned_gpu_addresses

    sizes = [gpu_memory_bytes(a) for a in assigned_gpu_addresses()]
    return [min(sizes) if sizes and None not in sizes else None]


def executor_gpu_memory(spark, tasks: int) -> int | None:  # noqa: ANN001 - a SparkSession
    """The smallest GPU memory ``tasks`` GPU tasks see; None without GPU scheduling, or
    when a task cannot read it."""
    conf = spark.sparkContext.getConf()
    if float(conf.get("spark.task.resource.gpu.amount", "0") or 0) <= 0:
        return None
    spark.sparkContext.setJobDescription("read the executors' GPU memory")
    sizes = spark.sparkContext.parallelize(range(tasks), tasks).mapPartitions(
        _task_gpu_memory).collect()
    if not sizes or None in sizes:
        log.warning("train.micro_batch_size: could not read the GPUs' memory with nvidia-smi "
                    "on every executor; training in whole batches (set it to split them)")
        return None
    return min(sizes)


def choose_micro_batch(settings: PruneJobSettings, num_classes: int,
                       device_bytes: int | None) -> int:
    """``train.micro_batch_size`` for devices of ``device_bytes`` (0: whole batches)."""
    train = settings.train
    if train.micro_batch_size or device_bytes is None:
        return train.micro_batch_size
    model = ModelSpec(settings.model.name, settings.model.image_size, num_classes,
                      alpha=settings.model.alpha, grayscale=settings.model.grayscale).build()
    whole = estimate_training_memory(model, train, accumulating=False)
    accumulating = estimate_training_memory(model, train, accumulating=True)
    images = fitting_micro_batch(train.batch_size, whole, accumulating, device_bytes)
    if images == train.batch_size:
        log.info("train.micro_batch_size: whole batches: %s fit the GPUs' %.1f GiB",
                 whole.describe(images), device_bytes / GIB)
        return 0
    log.warning("train.micro_batch_size: %s do not fit the GPUs' %.1f GiB; each step "
                "accumulates %d passes of %d images (%s)", whole.describe(train.batch_size),
                device_bytes / GIB, train.batch_size // images, images,
                accumulating.describe(images))
    return images


def fit_micro_batch(settings: PruneJobSettings, num_classes: int, spark,  # noqa: ANN001
                    tasks: int) -> None:
    """Set ``train.micro_batch_size`` for the cluster's GPUs (see the module)."""
    if settings.train.micro_batch_size:
        return
    device = executor_gpu_memory(spark, tasks)
    settings.train.micro_batch_size = choose_micro_batch(settings, num_classes, device)
