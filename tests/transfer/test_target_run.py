"""--target-run: refused unless made on the target data with the transfer's training settings.

The check reads only the runs' settings.yaml, so the source and target runs here are that
file alone, written by hand (no Spark, no training, no data set).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from pipeline.config import ConfigError, dump_yaml
from pipeline.experiment.run_layout import SETTINGS
from pipeline.transfer.settings import load_transfer_settings
from tests.support.job_settings import tiny_settings

JOB = Path(__file__).resolve().parents[2] / "jobs" / "transfer_tickets.py"


def _run(root: Path, name: str, data: str, *overrides: str) -> str:
    """A run directory holding only the settings of a run on ``data``."""
    settings = tiny_settings(data, str(root / "runs"), "prune.levels=1", *overrides)
    run = root / name
    run.mkdir()
    (run / SETTINGS).write_text(dump_yaml(settings))
    return str(run)


@pytest.fixture
def source(tmp_path) -> str:
    return _run(tmp_path, "source", str(tmp_path / "first"))


def _target(tmp_path: Path, *overrides: str) -> str:
    return _run(tmp_path, "target", str(tmp_path / "second"), *overrides)


def _main():  # noqa: ANN202
    spec = importlib.util.spec_from_file_location("transfer_tickets_cli", JOB)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


def test_a_target_run_of_another_budget_is_refused_naming_the_key(tmp_path, source, capsys):
    target = _target(tmp_path, "train.epochs=3")
    code = _main()(["--from", source, "--data", str(tmp_path / "second"),
                    "--target-run", target])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1, err
    assert err[0] == (
        "transfer_tickets: error: --target-run: train.epochs differs (source 2, target 3); the "
        "tickets found on the target must be trained as the transferred ones: give a target "
        "run made with the same training settings")


@pytest.mark.parametrize(("override", "shown"), [
    ("train.batch_size=16", "train.batch_size differs (source 32, target 16)"),
    ("train.optimizer=adam", "train.optimizer differs (source sgd, target adam)"),
    ("train.learning_rate=0.1", "train.learning_rate differs (source 0.02, target 0.1)"),
    ("train.lr_schedule=constant", "train.lr_schedule differs (source cosine, target constant)"),
    ("train.warmup_epochs=1", "train.warmup_epochs differs (source 0.0, target 1.0)"),
    ("prune.fraction_per_level=0.2", "prune.fraction_per_level differs (source 0.5, target 0.2)"),
    ("prune.strategy=layerwise", "prune.strategy differs (source global, target layerwise)"),
    ("rewind.optimizer=restore", "rewind.optimizer differs (source reset, target restore)"),
    ("model.alpha=0.5", "model.alpha differs (source 0.35, target 0.5)"),
    ("data.val_split=test", "data.val_split differs (transfer val, target test)"),
])
def test_every_training_key_is_compared(tmp_path, source, override, shown):
    target = _target(tmp_path, override)
    with pytest.raises(ConfigError) as info:
        load_transfer_settings(source, str(tmp_path / "second"), target_run=target)
    assert str(info.value).startswith(f"--target-run: {shown}; "), info.value


def test_a_value_the_transfer_overrides_is_named_as_the_transfer_s(tmp_path, source):
    target = _target(tmp_path)
    with pytest.raises(ConfigError, match=r"train.epochs differs \(transfer 3, target 2\)"):
        load_transfer_settings(source, str(tmp_path / "second"), overrides=["train.epochs=3"],
                               target_run=target)


def test_a_target_run_on_other_data_is_refused(tmp_path, source):
    target = _run(tmp_path, "target", str(tmp_path / "third"))
    with pytest.raises(ConfigError, match=r"^--target-run: .* was trained on .*third, not on"):
        load_transfer_settings(source, str(tmp_path / "second"), target_run=target)


def test_a_target_that_is_not_a_run_is_named_as_the_target(tmp_path, source):
    with pytest.raises(ConfigError, match=r"^--target-run: .*nowhere is not a run directory"):
        load_transfer_settings(source, str(tmp_path / "second"),
                               target_run=str(tmp_path / "nowhere"))


def test_a_target_run_trained_alike_is_accepted(tmp_path, source, capsys):
    # its own seed, more levels, other rewind points and controls: not how a ticket trains
    target = _target(tmp_path, "run.seed=9", "prune.levels=3", "rewind.epochs=[0]",
                     "grid.controls=[]", "grid.max_failures=5", "early_bird.enabled=true")
    settings = load_transfer_settings(source, str(tmp_path / "second"), target_run=target)
    assert settings.transfer.target_run == target
    code = _main()(["--from", source, "--data", str(tmp_path / "second"), "--target-run", target,
                    "--print-run-dir"])
    printed = capsys.readouterr()
    assert code == 0, printed.err
    assert printed.out.startswith(f"file://{source}/transfer/transfer-"), printed.out


def test_a_budget_set_on_both_sides_is_accepted(tmp_path, source):
    # conf/imagenet_mobilenetv2.yaml's 90 epochs, transferred with --set train.epochs=30: the
    # target run must be made with train.epochs=30 too
    target = _target(tmp_path, "train.epochs=3")
    settings = load_transfer_settings(source, str(tmp_path / "second"),
                                      overrides=["train.epochs=3"], target_run=target)
    assert settings.train.epochs == 3


def test_early_stopping_on_one_side_only_is_refused(tmp_path, source):
    target = _target(tmp_path, "early_bird.enabled=true", "early_bird.stop=true")
    with pytest.raises(ConfigError, match=r"early_bird.enabled differs \(source False, "
                                          r"target True\)"):
        load_transfer_settings(source, str(tmp_path / "second"), target_run=target)
