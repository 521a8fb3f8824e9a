"""The ingest command line: clear one-line errors, and a real spark-submit run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.data.readers import dataset_info, validate_dataset
from tests.support.ingest_trees import build_folders, build_kaggle, val_name

ROOT = Path(__file__).resolve().parents[2]
JOB = ROOT / "jobs" / "ingest_imagenet.py"


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(PYSPARK_PYTHON=sys.executable, PYSPARK_DRIVER_PYTHON=sys.executable)
    env["MASTER"] = "local[2]"
    return env


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(JOB), *args],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=300,
        cwd=str(ROOT),
    )


def _assert_one_line_error(proc: subprocess.CompletedProcess, needle: str) -> None:
    assert proc.returncode != 0
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert "Traceback" not in proc.stderr
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("ingest_imagenet: error:") and needle in lines[0], lines[0]


def test_missing_source(tmp_path):
    proc = _run("--source", str(tmp_path / "nope"), "--output", str(tmp_path / "out"))
    _assert_one_line_error(proc, "does not exist")


def test_unrecognised_layout(tmp_path):
    (tmp_path / "src" / "pictures").mkdir(parents=True)
    proc = _run("--source", str(tmp_path / "src"), "--output", str(tmp_path / "out"))
    _assert_one_line_error(proc, "unrecognised layout")


def test_val_image_without_label(tmp_path):
    build_kaggle(tmp_path / "src")
    (tmp_path / "src" / "ILSVRC/Data/CLS-LOC/val" / val_name(500)).write_bytes(b"x")
    proc = _run("--source", str(tmp_path / "src"), "--output", str(tmp_path / "out"))
    _assert_one_line_error(proc, "no label")


def test_existing_output_without_overwrite(tmp_path):
    build_folders(tmp_path / "src")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "something").write_text("x")
    proc = _run("--source", str(tmp_path / "src"), "--output", str(tmp_path / "out"))
    _assert_one_line_error(proc, "already exists")


@pytest.mark.parametrize(
    "setting, needle",
    [
        ("colour=red", "unknown setting colour"),
        ("image_size=big", "image_size: expected an integer"),
        ("layout=zip", "layout: must be one of"),
    ],
)
def test_bad_settings(tmp_path, setting, needle):
    build_folders(tmp_path / "src")
    proc = _run(
        "--source", str(tmp_path / "src"), "--output", str(tmp_path / "o"), "--set", setting
    )
    _assert_one_line_error(proc, needle)


def test_spark_submit_run(tmp_path):
    build_folders(tmp_path / "src", per_class=(2, 1))
    submit = Path(sys.executable).parent / "spark-submit"
    out = tmp_path / "out"
    proc = subprocess.run(
        [
            str(submit),
            "--master",
            "local[2]",
            "--conf",
            "spark.ui.enabled=false",
            str(JOB),
            "--source",
            str(tmp_path / "src"),
            "--output",
            str(out),
            "--image-size",
            "16",
            "--classes",
            "2",
            "--set",
            "jpeg_quality=80",
        ],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=300,
        cwd=str(tmp_path),
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "rows train 4, val 2; rejected 0" in proc.stdout
    validate_dataset(str(out))
    info = dataset_info(str(out))
    assert info["num_classes"] == 2 and info["settings"]["jpeg_quality"] == 80
