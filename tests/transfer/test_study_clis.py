"""The transfer and ensemble jobs' command lines: bad input is one line, exit status 1."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

JOBS = Path(__file__).resolve().parents[2] / "jobs"


def _main(name: str):  # noqa: ANN202
    spec = importlib.util.spec_from_file_location(f"{name}_cli", JOBS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


def test_transfer_from_a_directory_that_is_not_a_run(tmp_path, capsys):
    code = _main("transfer_tickets")(["--from", str(tmp_path / "nowhere"), "--data",
                                      str(tmp_path / "data")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1
    assert len(err) == 1 and err[0].startswith("transfer_tickets: error: --from: ")
    assert "is not a run directory" in err[0]


def test_ensembles_of_a_directory_that_is_not_a_run(tmp_path, capsys):
    code = _main("ensemble_tickets")([str(tmp_path / "nowhere")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1
    assert len(err) == 1 and "is not a finished run of prune_imagenet" in err[0]


@pytest.mark.parametrize(("override", "message"), [
    ("ensemble.across=[levels]", "ensemble.across: choose from replicates, rewinds"),
    ("ensemble.merge_pairs=[L1-k0-none@0]", "ensemble.merge_pairs: each pair is A+B"),
    ("ensemble.merge_weights=third", "ensemble.merge_weights: must be one of"),
])
def test_bad_ensemble_settings_are_named(tmp_path, capsys, override, message):
    code = _main("ensemble_tickets")([str(tmp_path), "--set", override])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1 and message in err[0], err
