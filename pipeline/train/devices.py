"""Which device a Spark task trains on.

When executors have GPUs (``spark.executor.resource.gpu.amount`` and
``spark.task.resource.gpu.amount``), Spark assigns each task GPU addresses through
``TaskContext.resources()``. A task must use only those: ``CUDA_VISIBLE_DEVICES`` is set to
them before TensorFlow initializes its GPUs, memory growth is enabled so tasks sharing a
card do not each grab all of it, and mixed precision is switched on when asked. Without a
GPU assignment the task runs on the CPU unchanged, with TensorFlow's thread pools sized to
the task's cores (``spark.task.cpus``) so concurrent tasks do not oversubscribe them.
"""

from __future__ import annotations

import logging
import os
from typing import Any

log = logging.getLogger(__name__)

_configured: dict[str, Any] | None = None


class GPUUnavailable(RuntimeError):
    """Spark assigned this task a GPU that TensorFlow cannot use."""


def gpu_unavailable_reason(built_with_cuda: bool, visible: int, addresses: list[str]) -> str:
    """One line: which GPU the task was given and why TensorFlow does not see it."""
    given = ",".join(addresses)
    if not built_with_cuda:
        why = ("this TensorFlow is built without CUDA (a CPU wheel); install "
               "tensorflow[and-cuda] on GPU nodes")
    else:
        why = (f"CUDA opened {visible} of them (check nvidia-smi, the driver and the CUDA "
               "libraries on this node)")
    return f"task was assigned GPU {given} but TensorFlow sees {visible} GPU(s): {why}"


def assigned_gpu_addresses() -> list[str]:
    """GPU addresses Spark gave the running task (empty outside a task or without GPUs)."""
    try:
        from pyspark import TaskContext
    except ImportError:  # pragma: no cover - pyspark is a dependency
        return []
    ctx = TaskContext.get()
    if ctx is None:
        return []
    resource = ctx.resources().get("gpu")
    return list(resource.addresses) if resource is not None else []


def task_cpus() -> int:
    """Cores reserved for the running task (``spark.task.cpus``), 1 when unknown."""
    try:
        from pyspark import TaskContext

        ctx = TaskContext.get()
        if ctx is not None:
            return max(1, int(ctx.cpus()))
    except Exception:  # noqa: BLE001 - older TaskContext lacks cpus(); fall back
        pass
    return 1


def device_environment(addresses: list[str]) -> dict[str, str]:
    """Environment a task with these GPU addresses gives TensorFlow."""
    if addresses:
        return {
            "CUDA_VISIBLE_DEVICES": ",".join(addresses),
            "TF_FORCE_GPU_ALLOW_GROWTH": "true",
        }
    return {}


def configure_task_devices(mixed_precision: bool = False) -> dict[str, Any]:
    """Pin this Python worker to its assigned GPUs (or the CPU); idempotent per process.

    Returns a description: ``{"gpus": [...], "cpus": n, "mixed_precision": bool}``.
    """
    global _configured
    addresses = assigned_gpu_addresses()
    if _configured is not None and _configured["gpus"] == addresses:
        return _configured
    if _configured is not None and _configured["gpus"]:
        # CUDA_VISIBLE_DEVICES is read once, when TensorFlow first opens the GPUs
        raise GPUUnavailable(
            f"Python worker reused with GPU {','.join(addresses) or 'none'} after TensorFlow "
            f"opened GPU {','.join(_configured['gpus'])}: give each executor one GPU "
            "(spark.executor.resource.gpu.amount=1) or set spark.python.worker.reuse=false")
    os.environ.update(device_environment(addresses))
    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")  # retracing notices when a worker builds many models
    cpus = task_cpus()
    try:
        tf.config.threading.set_intra_op_parallelism_threads(cpus)
        tf.config.threading.set_inter_op_parallelism_threads(max(1, min(2, cpus)))
    except RuntimeError:
        pass  # TensorFlow already initialized in this reused worker; keep its pools
    gpus = tf.config.list_physical_devices("GPU")
    if len(gpus) < len(addresses):
        raise GPUUnavailable(gpu_unavailable_reason(tf.test.is_built_with_cuda(), len(gpus),
                                                    addresses))
    for gpu in gpus:
        try:
            tf.config.experimental.set_memory_growth(gpu, True)
        except RuntimeError:
            pass
    use_mixed = bool(mixed_precision and gpus)
    if use_mixed:
        import keras

        keras.mixed_precision.set_global_policy("mixed_float16")
    _configured = {"gpus": addresses, "visible": len(gpus), "cpus": cpus,
                   "mixed_precision": use_mixed}
    return _configured
