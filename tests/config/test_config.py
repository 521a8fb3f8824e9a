"""Settings sections: declared once, checked when built, every key named in errors and --help."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import typing
from pathlib import Path
from types import SimpleNamespace

import pytest

from pipeline.config import ConfigError, describe, load_config
from pipeline.data.settings import IngestSettings
from pipeline.experiment.settings import (
    GridSettings,
    PruneJobSettings,
    PruneSettings,
    TrainSettings,
)
from pipeline.policy_fields import PolicyFields

ROOT = Path(__file__).resolve().parents[2]
LOCAL_CONF = ROOT / "conf" / "local.yaml"
PRUNE_KEYS = {"method", "levels", "fraction_per_level", "strategy", "prunable",
              "conv_fraction", "first_conv_fraction", "classifier_fraction", "min_layer_density",
              "keep_depthwise_channels", "granularity"}


@pytest.mark.parametrize(
    "cls,override,message",
    [
        (PruneJobSettings, "prune.strategy=foo",
         "prune.strategy: must be one of 'global', 'layerwise', got 'foo'"),
        (PruneJobSettings, "train.optimizer=lamb", "train.optimizer: must be one of 'sgd'"),
        (PruneJobSettings, "prune.classifier_fraction=1.0",
         r"prune.classifier_fraction: must be in \[0, 1\), got 1.0"),
        (PruneJobSettings, "prune.prunable=[conv, batchnorm]",
         "prune.prunable: unknown layer kind 'batchnorm'"),
        (PruneJobSettings, "grid.task_cpus=0", "grid.task_cpus: must be at least 1"),
        (PruneJobSettings, "model.bn_momentum=1.5", r"model.bn_momentum: must be in \(0, 1\)"),
        (PruneJobSettings, "train.slimming_l1=-1e-4", "train.slimming_l1: must be 0 or more"),
        (PruneJobSettings, "train.slimming_l1=1e-4x", "train.slimming_l1: expected a number"),
        (PruneJobSettings, "early_bird.masks=channels",
         "early_bird.masks: channels needs early_bird.channel_ratio"),
        (PruneJobSettings, "early_bird.channel_ratio=1.5",
         r"early_bird.channel_ratio: must be in \(0, 1\)"),
        (IngestSettings, "layout=zip", "layout: must be one of 'auto'"),
        (IngestSettings, "jpeg_quality=0", "jpeg_quality: must be in 1..100, got 0"),
    ],
)
def test_loader_names_the_key(cls, override, message):
    conf = LOCAL_CONF if cls is PruneJobSettings else None
    with pytest.raises(ConfigError, match=message):
        load_config(cls, conf, [override])


def test_numbers_in_exponent_notation_without_a_dot_are_numbers():
    # YAML 1.1 (PyYAML) reads 1e-4 as a string; 1.0e-4 as a float
    settings = load_config(PruneJobSettings, LOCAL_CONF, ["train.slimming_l1=1e-4",
                                                          "train.learning_rate=2E-2"])
    assert settings.train.slimming_l1 == 1e-4 and settings.train.learning_rate == 0.02


def test_defaults_are_valid_and_sections_check_themselves():
    PruneJobSettings()
    IngestSettings()
    TrainSettings(epochs=8, batch_size=16, optimizer="adam", lr_schedule="constant")
    with pytest.raises(ConfigError, match="^epochs: must be at least 1, got 0$"):
        TrainSettings(epochs=0)
    with pytest.raises(ConfigError, match="^mode: must be one of"):
        GridSettings(mode="async")
    with pytest.raises(ConfigError, match="^layout: must be one of"):
        IngestSettings(layout="zip")


def test_policy_fields_are_declared_once():
    from pipeline.experiment.mask_stage import policy_for
    from pipeline.tickets import PruningPolicy

    policy_names = [f.name for f in dataclasses.fields(PolicyFields)]
    assert [f.name for f in dataclasses.fields(PruneSettings)][:len(policy_names)] == policy_names
    assert [f.name for f in dataclasses.fields(PruningPolicy)] == [*policy_names, "exclude"]
    settings = load_config(PruneJobSettings, LOCAL_CONF, [
        "prune.prunable=[conv, dense]", "prune.classifier_fraction=0.1"])
    expected = PruningPolicy(strategy="layerwise", fraction_per_level=0.5,
                             prunable=["conv", "dense"], classifier_fraction=0.1)
    assert policy_for(SimpleNamespace(settings=settings)) == expected
    assert PruningPolicy.from_dict(expected.to_dict()) == expected
    assert set(expected.to_dict()) == {*policy_names, "exclude"}
    # a policy may keep every weight (f = 0); the job's settings may not
    assert PruningPolicy(fraction_per_level=0.0).fraction_per_level == 0.0
    with pytest.raises(ConfigError, match=r"^fraction_per_level: must be in \(0, 1\)"):
        PruneSettings(fraction_per_level=0.0)


def test_lr_schedule_choices_are_the_schedule_kinds():
    from pipeline.train.schedules import SCHEDULE_KINDS

    hint = typing.get_type_hints(TrainSettings)["lr_schedule"]
    assert typing.get_args(hint) == SCHEDULE_KINDS


def test_job_help_lists_every_key_with_a_description(capsys):
    import importlib.util

    path = ROOT / "jobs" / "prune_imagenet.py"
    spec = importlib.util.spec_from_file_location("prune_imagenet_help", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    with pytest.raises(SystemExit):
        module.parse_args(["--help"])
    out = capsys.readouterr().out
    rows = describe(PruneJobSettings)
    assert {k.removeprefix("prune.") for k, _, _ in rows if k.startswith("prune.")} == PRUNE_KEYS
    for key, text, _ in rows:
        assert text, f"{key} has no description"
        assert f"  {key} " in out and text.split()[0] in out


def test_settings_load_without_keras():
    code = ("import sys, pipeline.experiment.settings, pipeline.data.settings; "
            "print('keras' in sys.modules)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=ROOT, timeout=60)
    assert proc.stdout.strip() == "False", proc.stderr
