"""The main job end to end in Spark local mode on the ingested digits sample."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline.experiment.cells import Cell
from pipeline.experiment.job import run_prune_job
from pipeline.experiment.run_layout import RunLayout
from pipeline.store import ArtifactStore
from pipeline.tickets import load_ticket, masks_from_bytes
from pipeline.train.checkpoints import load_checkpoint
from tests.support.job_settings import tiny_settings

EXPECTED_CELLS = [
    (level, k, control)
    for level in (1, 2)
    for k in (0, 1)
    for control in ("none", "reinit", "random_mask")
]
REFERENCES = [(0, k, "none") for k in (0, 1)]  # the level-0 cells


@pytest.fixture(scope="module")
def mobilenet_run(spark, sample_dataset, tmp_path_factory):
    output = tmp_path_factory.mktemp("runs")
    settings = tiny_settings(sample_dataset, str(output))
    return run_prune_job(settings, spark=spark)


def test_results_table_has_exactly_the_expected_rows(mobilenet_run):
    store = ArtifactStore(mobilenet_run.run_url)
    table = pd.read_csv(store.path("results.csv"))
    parquet = pd.read_parquet(store.path("results.parquet"))
    assert len(table) == len(parquet) == 1 + len(REFERENCES) + len(EXPECTED_CELLS)
    assert (table["status"] == "ok").all(), table[["cell", "error"]]
    dense = table[table["cell"] == "dense"]
    assert len(dense) == 1 and dense["control"].item() == "none"
    assert dense["level"].item() == 0 and dense["rewind_epoch"].isna().all()
    cells = {(int(r.level), int(r.rewind_epoch), r.control) for r in table[table.cell != "dense"]
             .itertuples()}
    assert cells == set(EXPECTED_CELLS) | set(REFERENCES)
    for column in ("top1", "top5", "val_loss", "best_epoch", "train_seconds", "seed"):
        assert table[column].notna().all(), column
    assert ((table["top1"] >= 0) & (table["top1"] <= table["top5"]) & (table["top5"] <= 1)).all()


def test_weights_remaining_follow_the_imp_schedule(mobilenet_run):
    table = pd.read_csv(ArtifactStore(mobilenet_run.run_url).path("results.csv"))
    for level in (1, 2):
        rows = table[table["level"] == level]
        # global pruning keeps round(pool * 0.5 ** L) weights: exact to one weight
        np.testing.assert_allclose(rows["weights_remaining_prunable"], 0.5**level, atol=1e-5)
        assert (rows["weights_remaining_overall"] > rows["weights_remaining_prunable"]).all()
    assert (table.loc[table.level == 0, "weights_remaining_prunable"] == 1.0).all()


def test_saved_weights_and_tickets_have_exact_zeros(mobilenet_run):
    run = RunLayout(mobilenet_run.run_url).replicate(0)
    for level, k, control in EXPECTED_CELLS:
        cell = Cell(level, k, control)
        cell_store = run.cell_dir(cell)
        assert cell_store.read_json("result.json")["status"] == "ok"
        trained = load_checkpoint(cell_store, "weights")
        own = masks_from_bytes(cell_store.read_bytes("masks.npz"))
        chain = masks_from_bytes(run.store.read_bytes(*run.masks(level, k)))
        ticket = load_ticket(run.cell_dir(Cell(level, k)), "ticket")
        for name, index in ticket.kernel_index.items():
            assert np.all(trained[index][~own[name]] == 0.0), (cell.name, name)
            assert int(own[name].sum()) == int(chain[name].sum())  # same per-layer sparsity
            if control == "random_mask":
                trivial = own[name].all() or not own[name].any()  # only one such mask
                assert trivial or not np.array_equal(own[name], chain[name]), name
            else:
                np.testing.assert_array_equal(own[name], chain[name])
            assert np.all(ticket.weights[index][~ticket.masks[name]] == 0.0)


def test_level_two_masks_nest_inside_level_one(mobilenet_run):
    run = RunLayout(mobilenet_run.run_url).replicate(0)
    for k in (0, 1):
        first = masks_from_bytes(run.store.read_bytes(*run.masks(1, k)))
        second = masks_from_bytes(run.store.read_bytes(*run.masks(2, k)))
        for name in first:
            assert not np.any(second[name] & ~first[name]), name


def test_tickets_rewind_to_the_dense_checkpoint(mobilenet_run):
    run = RunLayout(mobilenet_run.run_url).replicate(0)
    for k in (0, 1):
        rewind_point = load_checkpoint(run.dense_dir(), run.dense_weights(k))
        ticket = load_ticket(run.cell_dir(Cell(1, k)), "ticket")
        for i, (stored, dense) in enumerate(zip(ticket.weights, rewind_point, strict=True)):
            kept = stored != 0
            np.testing.assert_array_equal(stored[kept], dense[kept], err_msg=f"weight {i}")


def test_report_and_figures_exist(mobilenet_run):
    run = ArtifactStore(mobilenet_run.run_url)
    report = run.read_text("report.md")
    assert "figures/accuracy_vs_weights.png" in report
    assert "L2-k1-random_mask" in report
    for k in (0, 1):  # the level-0 reference of every rewind point, and the comparison with it
        assert f"L0-k{k}-none" in report
    for name in ("accuracy_vs_weights", "early_stop_vs_weights", "layer_sparsity"):
        data = run.read_bytes("figures", f"{name}.png")
        assert data.startswith(b"\x89PNG") and len(data) > 5_000
    timings = run.read_json("timings.json")
    assert timings["dense"] > 0 and timings["grid"] > 0


def test_lth_check_reads_a_finished_run(mobilenet_run, tmp_path, capsys):
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "jobs" / "lth_check.py"
    spec = importlib.util.spec_from_file_location("lth_check_job", path)
    job = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(job)
    out = tmp_path / "check.md"
    assert job.main([mobilenet_run.run_url, "--output", str(out)]) == 0
    text = out.read_text()
    assert capsys.readouterr().out == text + "\n"  # printed, and written to --output
    for k in (0, 1):
        assert f"### Rewind to epoch {k}" in text and f"`L0-k{k}-none`" in text
    assert "| 1 | " in text and "| 2 | " in text  # a row per pruned level
    assert job.main([str(tmp_path / "no-run")]) == 1
    assert "has no results.parquet" in capsys.readouterr().err


def test_rows_count_the_multiply_adds_left(mobilenet_run):
    from pipeline.models.spec import ModelSpec
    from pipeline.tickets.flops import count_flops

    table = pd.read_csv(ArtifactStore(mobilenet_run.run_url).path("results.csv"))
    meta = load_ticket(RunLayout(mobilenet_run.run_url).replicate(0)
                       .cell_dir(Cell(2, 0)), "ticket").settings["model"]
    meta.pop("masked", None)
    dense = count_flops(ModelSpec(**meta).build()).dense_flops
    assert (table["dense_flops"] == dense).all()
    assert (table.loc[table.level == 0, "flops_remaining"] == dense).all()
    pruned = table[table.level > 0]
    # a ticket's controls keep each layer's weight count, so its multiply-adds
    assert pruned.groupby(["level", "rewind_epoch"])["flops_remaining"].nunique().max() == 1
    by_level = pruned.groupby("level")["flops_remaining"]
    assert dense > by_level.min()[1] and by_level.max()[1] > by_level.max()[2] > 0


def test_the_sparsest_ticket_exports_to_tflite_with_its_val_top1(mobilenet_run, tmp_path):
    from pipeline.experiment.export import export_cell

    summary = export_cell(mobilenet_run.run_url, "L2-k1-none", str(tmp_path / "t.tflite"),
                          val_images=1000)
    table = pd.read_csv(ArtifactStore(mobilenet_run.run_url).path("results.csv"))
    row = table[(table.cell == "L2-k1-none") & (table.replicate == 0)]
    assert summary.val_images == 100  # the whole val split
    assert summary.top1_cell == pytest.approx(row["top1"].item())
    assert abs(summary.top1_export - summary.top1_cell) <= 0.005
    assert summary.max_abs_diff < 1e-4 and summary.runtime == "ai-edge-litert on xnnpack"
    slim = export_cell(mobilenet_run.run_url, "L2-k1-none", str(tmp_path / "slim.keras"),
                       slim=True, val_images=1000)
    assert slim.slim.startswith(("removed", "no channel could be removed"))
    assert slim.top1_export == slim.top1_cell and slim.max_abs_diff <= 1e-4


def test_every_row_names_what_it_was_built_from(mobilenet_run):
    import hashlib

    from jobs.verify_run import main as verify_main
    from pipeline.train.checkpoints import checkpoint_record

    run = RunLayout(mobilenet_run.run_url).replicate(0) if RunLayout(
        mobilenet_run.run_url).store.is_dir("replicate-0") else RunLayout(mobilenet_run.run_url)
    table = pd.read_csv(ArtifactStore(mobilenet_run.run_url).path("results.csv"))
    dense = {e: checkpoint_record(run.dense_dir(), run.dense_weights(e)) for e in (0, 1, 2)}
    assert "parent_sha256" not in dense[0]
    assert dense[1]["parent_sha256"] == dense[0]["sha256"]
    assert dense[2]["parent_sha256"] == dense[1]["sha256"]
    for row in table[table.cell != "dense"].itertuples():
        assert row.rewind_sha256 == dense[int(row.rewind_epoch)]["sha256"], row.cell
        if row.level == 0:
            assert pd.isna(row.masks_sha256)
        else:
            data = run.store.read_bytes(*run.masks(int(row.level), int(row.rewind_epoch)))
            assert row.masks_sha256 == hashlib.sha256(data).hexdigest(), row.cell
    report = ArtifactStore(mobilenet_run.run_url).read_text("report.md")
    assert "**Provenance verified**" in report
    assert verify_main([mobilenet_run.run_url]) == 0


def test_verify_run_names_the_cells_built_on_a_replaced_checkpoint(mobilenet_run, tmp_path,
                                                                     capsys):
    import shutil

    from jobs.verify_run import main as verify_main
    from pipeline.train.checkpoints import checkpoint_record, save_checkpoint

    source = ArtifactStore(mobilenet_run.run_url).path()
    copy = tmp_path / Path(source).name
    shutil.copytree(source, copy)
    run = RunLayout(str(copy))
    run = run.replicate(0) if run.store.is_dir("replicate-0") else run
    weights = load_checkpoint(run.dense_dir(), run.dense_weights(1))
    other = [w + np.float32(0.01) if w.ndim > 1 else w for w in weights]  # another trajectory
    save_checkpoint(run.dense_dir(), other, run.dense_weights(1),
                    parent=checkpoint_record(run.dense_dir(), run.dense_weights(0))["sha256"])
    capsys.readouterr()
    assert verify_main([str(copy)]) == 1
    lines = capsys.readouterr().out.splitlines()
    built_on_k1 = {f"L{level}-k1-{c}" for level in (1, 2)
                   for c in ("none", "reinit", "random_mask")} | {"L0-k1-none"}
    named = {line.split(":")[0] for line in lines if "rewind checkpoint" in line}
    assert named == built_on_k1
    assert any(line.startswith("dense epoch 2 was not trained from the epoch-1 checkpoint")
               for line in lines)
    assert not any("-k0-" in line for line in lines)
