"""A task's GPU: the one-line errors when TensorFlow cannot use the GPU Spark assigned."""

from __future__ import annotations

import pytest

from pipeline.train import devices
from pipeline.train.devices import GPUUnavailable, configure_task_devices, gpu_unavailable_reason


def test_a_cpu_wheel_is_named_as_the_reason():
    line = gpu_unavailable_reason(False, 0, ["3"])
    assert line.startswith("task was assigned GPU 3 but TensorFlow sees 0 GPU(s): ")
    assert "tensorflow[and-cuda]" in line and "\n" not in line


def test_a_cuda_build_that_opens_no_device_points_at_the_node():
    line = gpu_unavailable_reason(True, 0, ["0", "1"])
    assert line.startswith("task was assigned GPU 0,1 but TensorFlow sees 0 GPU(s): ")
    assert "nvidia-smi" in line


def test_a_reused_worker_cannot_move_to_another_gpu(monkeypatch):
    monkeypatch.setattr(devices, "_configured", {"gpus": ["0"], "visible": 1, "cpus": 1,
                                                 "mixed_precision": False})
    monkeypatch.setattr(devices, "assigned_gpu_addresses", lambda: ["1"])
    with pytest.raises(GPUUnavailable, match="reused with GPU 1 after TensorFlow opened GPU 0"):
        configure_task_devices()


def test_without_an_assignment_the_cpu_is_used(monkeypatch):
    monkeypatch.setattr(devices, "_configured", None)
    configured = configure_task_devices()
    assert configured["gpus"] == [] and configured["mixed_precision"] is False
