"""The venv's spark-submit, run the way the README says, without activating the venv."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = REPO / ".venv" / "bin"

pytestmark = pytest.mark.skipif(not (VENV_BIN / "spark-submit").exists(),
                                reason="needs the project's .venv (make setup)")


def _submit_version(extra: dict[str, str]) -> subprocess.CompletedProcess:
    env = {"PATH": "/usr/bin:/bin", "HOME": os.environ.get("HOME", "/tmp"), **extra}
    return subprocess.run([str(VENV_BIN / "spark-submit"), "--version"], env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=120)


def test_with_pyspark_python_the_venvs_spark_submit_runs():
    proc = _submit_version({"PYSPARK_PYTHON": ".venv/bin/python"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "version" in proc.stderr + proc.stdout


def test_without_it_the_system_python_finds_no_spark():
    system = subprocess.run(["/usr/bin/env", "python3", "-c", "import pyspark"],
                            env={"PATH": "/usr/bin:/bin"}, capture_output=True)
    if system.returncode == 0:
        pytest.skip("the system python3 has a pyspark of its own")
    proc = _submit_version({})
    assert proc.returncode != 0
    assert "spark-class: No such file or directory" in proc.stderr
