"""Mistakes in settings or data fail before any training, with one line naming the setting.

A value wrong on its own fails when the settings are loaded (ConfigError); preflight checks
settings against each other and against the dataset (PreflightError).
"""

from __future__ import annotations

import pytest

from pipeline.config import ConfigError
from pipeline.experiment.preflight import PreflightError, check_settings, preflight
from pipeline.store import ArtifactStore
from tests.support.job_settings import tiny_settings


@pytest.mark.parametrize(
    "override,message",
    [
        ("rewind.epochs=[0, 5]", "rewind.epochs: 5 is outside the dense training"),
        ("grid.controls=[reinit, shuffled]", "grid.controls: unknown control 'shuffled'"),
        ("model.name=resnet50", "model.name: unknown model 'resnet50'"),
        ("train.round_images_per_worker=16",
         "train.round_images_per_worker: must be at least train.batch_size"),
    ],
)
def test_bad_settings(tmp_path, override, message):
    settings = tiny_settings("file:///nowhere", str(tmp_path), override)
    with pytest.raises(PreflightError, match=message.replace("[", r"\[")):
        check_settings(settings)


@pytest.mark.parametrize(
    "override,message",
    [
        ("prune.strategy=random", "prune.strategy: must be one of 'global', 'layerwise'"),
        ("prune.fraction_per_level=1.5", r"prune.fraction_per_level: must be in \(0, 1\), got 1.5"),
        ("prune.method=twoshot", "prune.method: must be one of 'imp', 'oneshot'"),
        ("prune.levels=0", "prune.levels: must be at least 1, got 0"),
        ("train.optimizer=lamb", "train.optimizer"),
        ("train.lr_schedule=step", "train.lr_schedule"),
        ("train.epochs=0", "train.epochs: must be at least 1, got 0"),
        ("rewind.epochs=[]", "rewind.epochs: give at least one"),
        ("rewind.epochs=[0, 0]", "rewind.epochs: duplicates"),
        ("grid.mode=async", "grid.mode"),
        ("grid.max_failures=0", "grid.max_failures: must be at least 1"),
        ("model.alpha=0", "model.alpha: must be positive"),
    ],
)
def test_bad_values_fail_when_loaded(tmp_path, override, message):
    with pytest.raises(ConfigError, match=message):
        tiny_settings("file:///nowhere", str(tmp_path), override)


def test_data_url_must_be_set(tmp_path):
    with pytest.raises(PreflightError, match="data.url: not set"):
        check_settings(tiny_settings("", str(tmp_path)))


def test_missing_dataset(tmp_path):
    settings = tiny_settings(str(tmp_path / "missing"), str(tmp_path))
    with pytest.raises(PreflightError, match="does not exist"):
        preflight(settings)


def test_directory_that_is_not_an_ingest_output(tmp_path):
    ArtifactStore(str(tmp_path / "junk")).write_text("hello", "file.txt")
    settings = tiny_settings(str(tmp_path / "junk"), str(tmp_path))
    with pytest.raises(PreflightError, match="not a complete ingest output"):
        preflight(settings)


def test_more_classes_than_the_data_has(sample_dataset, tmp_path):
    settings = tiny_settings(sample_dataset, str(tmp_path), "data.num_classes=1000")
    with pytest.raises(PreflightError, match="asks for 1000 classes but .* has only 10"):
        preflight(settings)


def test_model_larger_than_the_stored_images(sample_dataset, tmp_path):
    settings = tiny_settings(sample_dataset, str(tmp_path), "model.image_size=64")
    with pytest.raises(PreflightError, match="exceeds the dataset's stored image size 32"):
        preflight(settings)


def test_good_settings_describe_the_dataset(sample_dataset, tmp_path):
    facts = preflight(tiny_settings(sample_dataset, str(tmp_path)))
    assert (facts.num_classes, facts.train_rows, facts.val_rows, facts.image_size) == (
        10, 300, 100, 32)


@pytest.mark.parametrize(
    "override,line",
    [
        ("train.epochs=oops", "train.epochs: expected an integer, got 'oops'"),
        ("prune.strategy=foo", "prune.strategy: must be one of 'global', 'layerwise', got 'foo'"),
        ("prune.fraction_per_level=1.5", "prune.fraction_per_level: must be in (0, 1), got 1.5"),
    ],
)
def test_job_cli_reports_one_clear_line(tmp_path, capsys, override, line):
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "jobs" / "prune_imagenet.py"
    spec = importlib.util.spec_from_file_location("prune_imagenet_cli", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    code = module.main(["--config", str(path.parents[1] / "conf" / "local.yaml"),
                        "--set", f"data.url={tmp_path / 'missing'}",
                        "--set", f"run.output={tmp_path}", "--set", override])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1
    assert err == [f"prune_imagenet: error: {line}"]


# petastorm opens gs:// and s3:// through fsspec; without gcsfs/s3fs the grid tasks would
# fail deep inside petastorm, so the job says so before any training.
OBJECT_STORE_CHECK = """
import sys
sys.modules[{package!r}] = None  # as if the package were not installed
from pipeline.data.readers import DatasetError, check_reader_filesystem
try:
    check_reader_filesystem({url!r})
except DatasetError as exc:
    print("ERROR", exc)
else:
    print("OK")
"""


@pytest.mark.parametrize("url,package", [("gs://bucket/imagenet", "gcsfs"),
                                         ("s3://bucket/imagenet", "s3fs")])
def test_object_store_dataset_needs_its_fsspec_package(url, package):
    import subprocess
    import sys

    from pipeline.data.readers import check_reader_filesystem

    check_reader_filesystem(url)  # installed by the cloud extra: no error
    proc = subprocess.run([sys.executable, "-c", OBJECT_STORE_CHECK.format(package=package,
                                                                         url=url)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("ERROR "), proc.stdout
    assert package in proc.stdout and "lottery-spark[cloud]" in proc.stdout
