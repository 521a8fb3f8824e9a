"""aggregate_runs refuses pseudo-replication: a run given twice, or runs sharing a seed.

The refusals read only each run's settings.yaml, so the runs here are that file alone,
written by hand (no Spark, no training).
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.config import dump_yaml
from pipeline.experiment.aggregate import AggregateError, merge_runs
from pipeline.experiment.run_layout import SETTINGS
from tests.support.job_settings import tiny_settings

REPO = Path(__file__).resolve().parents[2]
JOB = REPO / "jobs" / "aggregate_runs.py"


def _run(root: Path, name: str, seed: int) -> str:
    """A run directory holding only the settings of a run with ``run.seed`` = ``seed``."""
    settings = tiny_settings(str(root / "data"), str(root / "runs"), f"run.seed={seed}")
    run = root / name
    run.mkdir()
    (run / SETTINGS).write_text(dump_yaml(settings))
    return str(run)


def _main():  # noqa: ANN202
    spec = importlib.util.spec_from_file_location("aggregate_runs_cli", JOB)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


def _refused(capsys, *argv: str) -> str:  # noqa: ANN001
    code = _main()([*argv, "--output", "study"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1, err
    assert err[0].startswith("aggregate_runs: error: ")
    return err[0]


def test_a_run_given_twice_is_refused_in_one_line(tmp_path):
    a = _run(tmp_path, "a", 1)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.run([sys.executable, str(JOB), a, a, "--output", str(tmp_path / "study")],
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 1, proc.stderr
    err = proc.stderr.strip().splitlines()
    assert len(err) == 1, proc.stderr  # one line, no traceback
    assert err[0] == (f"aggregate_runs: error: run file://{a} is given 2 times ({a!r}, {a!r}): "
                      "counting a run twice is pseudo-replication; give each run once")
    assert not (tmp_path / "study").exists()


def test_other_spellings_of_one_run_are_the_same_run(tmp_path, monkeypatch, capsys):
    a = _run(tmp_path, "a", 1)
    b = _run(tmp_path, "b", 2)
    (tmp_path / "link").symlink_to(a)
    monkeypatch.chdir(tmp_path)
    for other in (a + "/", "a", "./a/", "link", f"file://{a}/", str(tmp_path / "b" / ".." / "a")):
        line = _refused(capsys, a, b, other)
        assert f"run file://{a} is given 2 times ({a!r}, {other!r})" in line, line


def test_runs_sharing_a_seed_are_refused_naming_them(tmp_path, capsys):
    a = _run(tmp_path, "a", 3)
    b = _run(tmp_path, "b", 4)
    c = _run(tmp_path, "c", 3)
    line = _refused(capsys, a, b, c)
    assert line == (f"aggregate_runs: error: file://{a} and file://{c} share run.seed 3: the "
                    "same settings and seed are the same replicates, and counting them twice "
                    "is pseudo-replication; merge runs made with distinct run.seed values")


def test_distinct_runs_with_distinct_seeds_pass_the_checks(tmp_path):
    a = _run(tmp_path, "a", 1)
    b = _run(tmp_path, "b", 2)
    # past the pseudo-replication checks: refused only because these runs have no results
    with pytest.raises(AggregateError, match="has no results.parquet"):
        merge_runs([a, b])
