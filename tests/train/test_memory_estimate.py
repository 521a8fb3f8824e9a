"""The training-memory estimate counts what a pass holds, and the micro-batch it picks is
the largest divisor of the batch that fits; where even one image does not fit it says so."""

from __future__ import annotations

import keras
import pytest

from pipeline.experiment.micro_batch import choose_micro_batch, gpu_memory_bytes
from pipeline.experiment.settings import PruneJobSettings, TrainSettings
from pipeline.train.memory import (
    GIB,
    USABLE_FRACTION,
    TrainingMemory,
    estimate_training_memory,
    fitting_micro_batch,
)


def _mlp() -> keras.Model:
    return keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Flatten(),
                             keras.layers.Dense(300), keras.layers.Dense(10)])


def test_the_estimate_counts_activations_weights_and_slots():
    model = _mlp()
    params = 192 * 300 + 300 + 300 * 10 + 10
    sgd = TrainSettings(optimizer="sgd", momentum=0.9)
    memory = estimate_training_memory(model, sgd)
    # the input in float32, each layer's output and two gradients of the largest, in float32
    assert memory.per_image_bytes == 192 * 4 + (192 + 300 + 10 + 2 * 300) * 4
    assert memory.fixed_bytes == params * 4 * 3  # weight, gradient, momentum
    adam = estimate_training_memory(model, TrainSettings(optimizer="adam"), accumulating=True)
    assert adam.fixed_bytes == params * 4 * 5  # + two moments + the accumulator
    mixed = estimate_training_memory(model, TrainSettings(mixed_precision=True, momentum=0.9))
    assert mixed.per_image_bytes == 192 * 4 + (192 + 300 + 10 + 2 * 300) * 2
    assert mixed.fixed_bytes == params * (4 * 3 + 2)  # + the float16 copy


def test_the_largest_fitting_divisor_is_chosen():
    memory = TrainingMemory(fixed_bytes=0, per_image_bytes=GIB)
    device = int(10 * GIB / USABLE_FRACTION)  # room for exactly 10 images
    assert fitting_micro_batch(8, memory, memory, device) == 8
    assert fitting_micro_batch(96, memory, memory, device) == 8  # 12 does not fit
    assert fitting_micro_batch(30, memory, memory, device) == 10
    with pytest.raises(ValueError, match="one image needs 12.0 GiB"):
        fitting_micro_batch(4, TrainingMemory(GIB, 11 * GIB), TrainingMemory(GIB, 11 * GIB),
                            device)


def _settings(batch: int, mixed: bool = False) -> PruneJobSettings:
    s = PruneJobSettings()
    s.model.image_size, s.model.alpha = 224, 1.0
    s.train.batch_size, s.train.mixed_precision = batch, mixed
    return s


def test_mobilenet_v2_batches_split_only_where_a_gpu_is_too_small():
    t4 = 15360 * 2**20
    big = _settings(768)  # the global batch of conf/emr.yaml on one T4, in float32
    micro = choose_micro_batch(big, 1000, t4)
    assert 0 < micro < 768 and 768 % micro == 0
    assert choose_micro_batch(_settings(96, mixed=True), 1000, t4) == 0
    assert choose_micro_batch(big, 1000, None) == 0  # no GPUs: whole batches
    given = _settings(768)
    given.train.micro_batch_size = 64
    assert choose_micro_batch(given, 1000, t4) == 64


def test_gpu_memory_is_read_with_nvidia_smi(tmp_path, monkeypatch):
    tool = tmp_path / "nvidia-smi"
    tool.write_text('#!/bin/sh\n[ "$4" = 1 ] && echo "15360" || exit 6\n')
    tool.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:/usr/bin:/bin")
    assert gpu_memory_bytes("1") == 15360 * 2**20
    assert gpu_memory_bytes("0") is None  # the tool failed
    monkeypatch.setenv("PATH", str(tmp_path / "none"))
    assert gpu_memory_bytes("1") is None
