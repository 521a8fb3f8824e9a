"""Exporting a finished cell as a plain ``.keras`` model (jobs/export_ticket.py).

The run is made without training: the same run directory, settings and cell artifacts the
main job writes (``RunDirectory``, ``to_remote``, ``finish_cell``), from a masked
MobileNetV2 (α 0.35, 32 px) whose kernels were moved off their initialization, so an
export that rebuilt the model without loading the cell's weights would be caught.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

from pipeline.experiment.export import ExportError, export_keras
from tests.support.job_settings import tiny_settings

REPO = Path(__file__).resolve().parents[2]
PLAIN_CLASSES = {"InputLayer", "Rescaling", "Conv2D", "DepthwiseConv2D", "Dense",
                 "BatchNormalization", "ReLU", "Add", "ZeroPadding2D", "GlobalAveragePooling2D",
                 "Dropout", "Flatten", "MaxPooling2D", "Activation"}


def _finish(ctx, cell, masks, rng) -> keras.Model:  # noqa: ANN001
    """Store ``cell`` as finish_cell does, from moved-off-init weights under ``masks``."""
    from pipeline.experiment.cell_run import finish_cell
    from pipeline.tickets import plain_weights, rewind

    model = ctx.spec.build()
    start = plain_weights(model)
    trained = [w + rng.normal(0, 0.05, w.shape).astype(w.dtype) if w.ndim >= 2 else w
               for w in start]
    rewind(model, trained, masks)
    history = [{"epoch": 1, "loss": 2.0, "first_step": 0, "last_step": 2,
                "learning_rate": 0.02, "images": 10, "top1": 0.1, "top5": 0.5,
                "val_loss": 2.3}]
    finish_cell(ctx, cell, model, masks, start, history, 1.0)
    return model


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> dict:
    """A run with L0-k0-none, L1-k0-none and L1-k0-random_mask finished, L1-k0-reinit not."""
    from pipeline.experiment.cells import Cell
    from pipeline.experiment.dense_stage import model_spec
    from pipeline.experiment.mask_stage import policy_for
    from pipeline.experiment.preflight import DatasetFacts
    from pipeline.experiment.run_dir import RunDirectory
    from pipeline.tickets import PruningPolicy, masks_at_level, ones_masks

    root = tmp_path_factory.mktemp("export")
    settings = tiny_settings(str(root / "no-dataset"), str(root / "runs"), "prune.levels=1",
                             "rewind.epochs=[0]", "data.num_classes=10")
    run = RunDirectory(settings)
    run.write_settings()
    rep = run.replicates()[0]
    facts = DatasetFacts(url=settings.data.url, train_url="", val_url="", image_size=32,
                         num_classes=10, train_rows=60, val_rows=20)
    policy = policy_for(rep)
    ctx = rep.to_remote(facts, model_spec(rep, facts), 1, policy.to_dict())
    rng = np.random.default_rng(0)

    probe = ctx.spec.build()
    masks = masks_at_level(probe, PruningPolicy.from_dict(policy.to_dict()), level=1)
    flipped = {name: rng.permutation(m.ravel()).reshape(m.shape) for name, m in masks.items()}
    models = {
        "L0-k0-none": _finish(ctx, Cell(0, 0), ones_masks(probe), rng),
        "L1-k0-none": _finish(ctx, Cell(1, 0), masks, rng),
        "L1-k0-random_mask": _finish(ctx, Cell(1, 0, "random_mask"), flipped, rng),
    }
    return {"url": run.url, "root": root, "models": models,
            "masks": {"L1-k0-none": masks, "L1-k0-random_mask": flipped}}


@pytest.mark.parametrize("cell", ["L1-k0-none", "L1-k0-random_mask", "L0-k0-none"])
def test_export_loads_as_plain_keras(finished_run, cell) -> None:
    out = finished_run["root"] / "out" / f"{cell}.keras"
    url = export_keras(finished_run["url"], cell, f"file://{out}")
    assert url == f"file://{out}" and out.is_file()

    keras.backend.clear_session()
    loaded = keras.saving.load_model(out)  # no custom_objects: plain layers only
    classes = {type(layer).__name__ for layer in loaded.layers}
    assert classes <= PLAIN_CLASSES, classes - PLAIN_CLASSES
    assert {"Conv2D", "DepthwiseConv2D", "Dense"} <= classes
    assert all(type(layer).__module__.startswith("keras.") for layer in loaded.layers)

    masked = finished_run["models"][cell]
    by_name = {layer.name: layer for layer in loaded.layers}
    for name, mask in finished_run["masks"].get(cell, {}).items():
        kernel = by_name[name].kernel.numpy()
        assert np.all(kernel[~mask] == 0.0) and not np.signbit(kernel[~mask]).any(), name
        # surviving weights are the cell's trained values, not a fresh initialization
        np.testing.assert_array_equal(kernel[mask], masked.get_layer(name).kernel.numpy()[mask])
    x = np.random.default_rng(1).uniform(0, 255, (4, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(loaded.predict(x, verbose=0), masked.predict(x, verbose=0),
                               rtol=1e-5, atol=1e-6)


def test_a_replicate_directory_works_as_the_run(finished_run, tmp_path) -> None:
    out = tmp_path / "t.keras"
    export_keras(f"{finished_run['url']}/replicate-0", "L1-k0-none", str(out))
    assert out.is_file()


@pytest.mark.parametrize(("cell", "output", "message"), [
    ("L1-k0-reinit", "x.keras", "is not finished"),
    ("L3-k0-none", "x.keras", "unknown cell 'L3-k0-none': the run's cells are L0-k0-none"),
    ("L1-k5-bogus", "x.keras", "unknown cell"),
    ("ticket-1", "x.keras", "cell names look like L2-k1-none"),
    ("L1-k0-none", "x.h5", "must end in .keras"),
])
def test_export_errors(finished_run, tmp_path, cell, output, message) -> None:
    with pytest.raises(ExportError, match=message):
        export_keras(finished_run["url"], cell, str(tmp_path / output))
    assert not (tmp_path / output).exists()


def test_missing_run_and_replicate(finished_run, tmp_path) -> None:
    with pytest.raises(ExportError, match="does not exist"):
        export_keras(str(tmp_path / "nowhere"), "L1-k0-none", str(tmp_path / "x.keras"))
    with pytest.raises(ExportError, match="no settings.yaml"):
        export_keras(str(tmp_path), "L1-k0-none", str(tmp_path / "x.keras"))
    with pytest.raises(ExportError, match="has no replicate 3"):
        export_keras(finished_run["url"], "L1-k0-none", str(tmp_path / "x.keras"), replicate=3)


def test_classes_from_an_unreadable_dataset_are_a_clear_error(finished_run, tmp_path) -> None:
    import shutil

    import yaml

    run = tmp_path / "run"
    shutil.copytree(finished_run["url"].removeprefix("file://"), run)
    settings = yaml.safe_load((run / "settings.yaml").read_text())
    settings["data"]["num_classes"] = 0  # then the count comes from the (missing) dataset
    (run / "settings.yaml").write_text(yaml.safe_dump(settings))
    with pytest.raises(ExportError, match="cannot tell the number of classes"):
        export_keras(str(run), "L0-k0-none", str(tmp_path / "x.keras"))
    export_keras(str(run), "L1-k0-none", str(tmp_path / "x.keras"))  # a ticket knows its spec


def test_cli_reports_one_line(finished_run, tmp_path) -> None:
    out = tmp_path / "t.keras"
    cmd = [sys.executable, str(REPO / "jobs" / "export_ticket.py"), finished_run["url"]]
    bad = subprocess.run([*cmd, "L7-k0-none", "--output", str(out)], capture_output=True,
                         text=True, cwd=tmp_path, timeout=300)
    assert bad.returncode == 1
    lines = [line for line in bad.stderr.splitlines() if line.startswith("export_ticket")]
    assert len(lines) == 1 and lines[0].startswith("export_ticket: error: unknown cell")
    assert not out.exists()

    from jobs.export_ticket import main

    assert main([finished_run["url"], "L1-k0-none", "--output", str(out),
                 "--val-images", "0"]) == 0
    assert out.is_file()


def _copy_run(finished_run, tmp_path):  # noqa: ANN001, ANN202
    import shutil

    run = tmp_path / "run"
    shutil.copytree(finished_run["url"].removeprefix("file://"), run)
    return run


def test_slim_of_a_cell_without_empty_channels_keeps_the_architecture(finished_run,
                                                                       tmp_path) -> None:
    from pipeline.experiment.export import export_cell

    out = tmp_path / "slim.keras"
    summary = export_cell(finished_run["url"], "L0-k0-none", str(out), slim=True,
                          val_images=0)
    assert "no channel could be removed" in summary.slim and "same architecture" in summary.slim
    keras.backend.clear_session()
    loaded = keras.saving.load_model(out)
    masked = finished_run["models"]["L0-k0-none"]
    assert [tuple(w.shape) for w in loaded.weights] == \
        [tuple(w.shape) for w in masked.weights if "mask" not in w.path]
    assert summary.flops == summary.dense_flops  # nothing pruned at level 0
    assert json.loads(Path(f"{out}.json").read_text())["slim"] == summary.slim


def test_tflite_export_runs_in_litert_like_the_cell(finished_run, tmp_path) -> None:
    from pipeline.experiment.export import export_cell
    from pipeline.export.tflite import TFLiteModel

    out = tmp_path / "t.tflite"
    summary = export_cell(finished_run["url"], "L1-k0-none", str(out), val_images=0)
    assert summary.format == "tflite" and summary.bytes == out.stat().st_size
    assert summary.flops < summary.dense_flops
    x = np.random.default_rng(1).uniform(0, 255, (4, 32, 32, 3)).astype("float32")
    expected = finished_run["models"]["L1-k0-none"].predict(x, verbose=0)
    np.testing.assert_allclose(TFLiteModel(out.read_bytes()).predict(x), expected, atol=1e-5)


def test_a_failed_cell_and_a_transfer_run_with_another_classifier(finished_run,
                                                                   tmp_path) -> None:
    import yaml

    from pipeline.experiment.export import export_cell

    run = _copy_run(finished_run, tmp_path)
    failed = run / "replicate-0" / "grid" / "L1" / "k0" / "reinit"
    failed.mkdir(parents=True, exist_ok=True)
    (failed / "result.json").write_text(json.dumps(
        {"status": "failed", "error": "Traceback ...\nRuntimeError: executor lost"}))
    with pytest.raises(ExportError, match="did not finish .*RuntimeError: executor lost"):
        export_cell(str(run), "L1-k0-reinit", str(tmp_path / "x.tflite"), val_images=0)

    settings = yaml.safe_load((run / "settings.yaml").read_text())
    settings["transfer"] = {"source": "file:///somewhere/source-run"}
    settings["data"]["num_classes"] = 5  # the target's classifier, not the cell's
    (run / "settings.yaml").write_text(yaml.safe_dump(settings))
    with pytest.raises(ExportError, match="do not fit mobilenet_v2 with 5 classes"):
        export_cell(str(run), "L0-k0-none", str(tmp_path / "x.tflite"), val_images=0)
    assert not (tmp_path / "x.tflite").exists()


@pytest.mark.parametrize(("args", "message"), [
    (["L1-k0-none", "--output", "x.tflite", "--quantize", "int8", "--val-images", "0"],
     "cannot read the train split"),
    (["L1-k0-none", "--output", "x.keras", "--quantize", "int8"], "applies to .tflite"),
    (["L1-k0-none", "--output", "x.onnx"], "must end in .keras"),
    (["L1-k0-none", "--output", "x.keras", "--val-images", "-1"], "must be >= 0"),
    (["L1-k0-none", "--output", "x.keras"], "cannot read the val split"),
])
def test_cli_bad_export_options(finished_run, tmp_path, args, message) -> None:
    import contextlib
    import io

    from jobs.export_ticket import main

    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        status = main([finished_run["url"], *[str(tmp_path / a) if a.startswith("x.") else a
                                              for a in args]])
    assert status == 1
    lines = [line for line in err.getvalue().splitlines() if line.startswith("export_ticket")]
    assert len(lines) == 1 and lines[0].startswith("export_ticket: error:"), lines
    assert message in lines[0]
    assert not list(tmp_path.glob("x.*"))
