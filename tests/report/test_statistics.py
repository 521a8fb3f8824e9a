"""Replicates: the summary table, paired comparisons and verdicts, the new files and figures."""

from __future__ import annotations

import io
import math
import statistics

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from scipy import stats

from pipeline.report import paired_comparisons, summarize, write_report
from pipeline.report.figures import DPI, FIGSIZE, learning_curves, line_figure
from pipeline.report.markdown import render_report
from pipeline.report.result_row import ResultRow
from pipeline.report.statistics import (
    SUMMARY_COLUMNS,
    ReplicateError,
    comparisons_frame,
    t_interval,
)
from pipeline.report.table import results_frame
from pipeline.report.verdicts import (
    BEAT,
    FELL_BELOW,
    FEW_REPLICATES,
    INCONCLUSIVE,
    MATCHED,
    NON_INFERIOR,
)
from pipeline.store import ArtifactStore
from pipeline.tickets.controls import TICKET

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
EPOCHS = 4


def _history(top1: float, first: int = 1) -> list[dict]:
    """Epochs first..EPOCHS ending at ``top1``; lowest val loss at the last epoch."""
    return [{"epoch": e, "top1": top1 - 0.02 * (EPOCHS - e), "top5": min(1.0, top1 + 0.2),
             "val_loss": 2.0 - top1 + 0.1 * (EPOCHS - e), "loss": 1.0 / e, "seconds": 1.0}
            for e in range(first, EPOCHS + 1)]


def _sparsity(keep: float, channels: int = 0) -> dict:
    return {"weights_remaining_prunable": keep, "weights_remaining_overall": keep,
            "layers_emptied": 0, "depthwise_channels_emptied": channels}


def _cell(level: int, k: int, control: str, top1: float, replicate: int) -> ResultRow:
    seed = 100 + replicate
    return ResultRow.ok(f"L{level}-k{k}-{control}", level, k, control, seed,
                        _sparsity(0.8**level, channels=int(level == 2 and control == "reinit")),
                        _history(top1, first=k + 1), 1.0, replicate=replicate,
                        control_seed=None if control == TICKET else 1000 + replicate)


def _pair_rows(diffs_points: list[float], control: str = "reinit") -> list[ResultRow]:
    """A level-1 ticket and one control per replicate, ticket − control = ``diffs_points``;
    the replicates' own levels differ a lot, which pairing must remove."""
    rows = []
    for r, diff in enumerate(diffs_points):
        base = 0.50 + 0.07 * r
        rows.append(_cell(1, 0, TICKET, base + diff / 100.0, r))
        rows.append(_cell(1, 0, control, base, r))
    return rows


def _study(replicates: int = 3) -> list[ResultRow]:
    """A grid with levels 0–2, rewind epochs 0 and 1, both controls, over replicates."""
    rng = np.random.default_rng(0)
    rows = []
    for r in range(replicates):
        rows.append(ResultRow.dense(100 + r, _history(0.80 + 0.01 * rng.standard_normal()),
                                    replicate=r))
        for k in (0, 1):
            rows.append(_cell(0, k, TICKET, 0.78 + 0.01 * rng.standard_normal(), r))
            for level in (1, 2):
                for control, top1 in ((TICKET, 0.76), ("reinit", 0.60), ("random_mask", 0.66)):
                    rows.append(_cell(level, k, control,
                                      top1 - 0.03 * level + 0.01 * rng.standard_normal(), r))
    return rows


def _history_frame(rows: list[ResultRow]) -> pd.DataFrame:
    records = []
    for row in rows:
        first = 1 if row.rewind_epoch is None else row.rewind_epoch + 1
        for entry in _history(row.top1, first):
            records.append({"replicate": row.replicate, "cell": row.cell, "epoch": entry["epoch"],
                            "learning_rate": 0.1 / entry["epoch"], "loss": entry["loss"],
                            "val_loss": entry["val_loss"], "top1": entry["top1"],
                            "top5": entry["top5"]})
    return pd.DataFrame.from_records(records)


# -- the summary table ---------------------------------------------------------------------
def test_summary_statistics_of_a_hand_made_table() -> None:
    top1 = [0.60, 0.64, 0.65, 0.71]
    rows = [_cell(1, 0, TICKET, v, r) for r, v in enumerate(top1)]
    rows.append(ResultRow.failed("L1-k0-none", 1, 0, TICKET, 104, "boom", replicate=4))
    rows += [_cell(1, 0, "reinit", 0.5, 0)]  # one replicate: no spread, no interval
    rows += [ResultRow.dense(100 + r, _history(v), replicate=r)
             for r, v in enumerate((0.80, 0.82))]
    rows += [_cell(0, 0, TICKET, v, r) for r, v in enumerate((0.70, 0.74, 0.75))]
    summary = summarize(results_frame(rows))
    assert tuple(summary.columns) == SUMMARY_COLUMNS
    assert list(summary.cell) == ["dense", "L0-k0-none", "L1-k0-none", "L1-k0-reinit"]
    dense = summary.iloc[0]
    assert pd.isna(dense.rewind_epoch) and dense.level == 0 and dense.n == 2

    ticket = summary.set_index("cell").loc["L1-k0-none"]
    mean, sd, n = statistics.fmean(top1), statistics.stdev(top1), len(top1)
    half = stats.t.ppf(0.975, n - 1) * sd / math.sqrt(n)
    assert (ticket.n, ticket.failed) == (4, 1)
    assert ticket.top1_mean == pytest.approx(mean)
    assert ticket.top1_sd == pytest.approx(sd)
    assert (ticket.top1_min, ticket.top1_max) == (pytest.approx(0.60), pytest.approx(0.71))
    assert ticket.top1_ci_low == pytest.approx(mean - half)
    assert ticket.top1_ci_high == pytest.approx(mean + half)
    assert ticket.top1_ci_high - ticket.top1_ci_low == pytest.approx(2 * 3.182446 * sd / 2,
                                                                      rel=1e-5)
    top5 = [min(1.0, v + 0.2) for v in top1]
    assert ticket.top5_mean == pytest.approx(statistics.fmean(top5))
    assert ticket.weights_remaining_prunable_mean == pytest.approx(0.8)
    assert ticket.best_epoch_mean == EPOCHS

    single = summary.set_index("cell").loc["L1-k0-reinit"]
    assert single.n == 1 and single.top1_mean == pytest.approx(0.5)
    assert pd.isna(single.top1_sd) and pd.isna(single.top1_ci_low)
    assert single.top1_min == single.top1_max == pytest.approx(0.5)


def test_t_interval_matches_scipy() -> None:
    values = [1.0, 2.0, 4.0]
    low, high = stats.t.interval(0.95, 2, loc=np.mean(values), scale=stats.sem(values))
    interval = t_interval(values)
    assert (interval.low, interval.high) == (pytest.approx(low), pytest.approx(high))
    assert math.isnan(t_interval([1.0]).low) and t_interval([]).n == 0


# -- verdicts ------------------------------------------------------------------------------
def _interval(diffs: list[float]) -> tuple[float, float]:
    n = len(diffs)
    half = stats.t.ppf(0.975, n - 1) * statistics.stdev(diffs) / math.sqrt(n)
    return statistics.fmean(diffs) - half, statistics.fmean(diffs) + half


@pytest.mark.parametrize("n", [3, 4, 5])
def test_verdict_flips_to_beat_only_when_the_interval_excludes_zero(n: int) -> None:
    noise = [1.5, -1.5, 0.8, -0.4, 0.2][:n]
    seen = set()
    for shift in np.linspace(0.0, 6.0, 25):
        diffs = [shift + e for e in noise]
        comparison = paired_comparisons(results_frame(_pair_rows(diffs)))
        control = [c for c in comparison if c.other == "reinit"]
        assert len(control) == 1 and control[0].n == n
        low, high = _interval(diffs)
        assert control[0].interval.low == pytest.approx(low, abs=1e-6)
        expected = BEAT if low > 0 else NON_INFERIOR if low > -1 else INCONCLUSIVE
        assert control[0].verdict == expected, (shift, low, high)
        seen.add(expected)
    assert seen == {BEAT, NON_INFERIOR, INCONCLUSIVE} if n < 5 else {BEAT, NON_INFERIOR}


def test_verdict_words() -> None:
    cases = {
        (5.0, 6.0, 5.5, 6.5): BEAT,
        (-5.0, -6.0, -5.5, -6.5): FELL_BELOW,
        (0.1, -0.2, 0.0, 0.1): MATCHED,  # the interval lies within ±MARGIN_POINTS
        (3.0, -2.0, 1.5, -1.0): INCONCLUSIVE,
    }
    for diffs, word in cases.items():
        [c] = [c for c in paired_comparisons(results_frame(_pair_rows(list(diffs))))
               if c.other == "reinit"]
        assert c.verdict == word, diffs
        assert c.interval.mean == pytest.approx(statistics.fmean(diffs))
    # a difference that excludes 0 is reported as such, even inside the margin
    [c] = [c for c in paired_comparisons(results_frame(_pair_rows([0.2, 0.25, 0.3])))
           if c.other == "reinit"]
    assert c.verdict == BEAT


def test_one_replicate_is_inconclusive_and_said_so() -> None:
    [c] = [c for c in paired_comparisons(results_frame(_pair_rows([10.0])))
           if c.other == "reinit"]
    assert c.n == 1 and c.verdict == FEW_REPLICATES
    text = render_report(results_frame(_pair_rows([10.0])), {}, {}, [])
    assert ("vs `reinit` 50.00%: **inconclusive (fewer than 3 replicates)** (+10.00 points, "
            "one replicate)") in text


def test_a_replicate_twice_or_unnumbered_is_an_error_not_an_average() -> None:
    rows = _pair_rows([2.0, 2.5, 3.0])
    twice = results_frame(rows + [rows[0]])
    with pytest.raises(ReplicateError, match=r"replicate\(s\) \[0\] appear more than once"):
        paired_comparisons(twice)
    unnumbered = results_frame(rows)
    unnumbered["replicate"] = unnumbered["replicate"].astype("Float64")
    unnumbered.loc[0, "replicate"] = None
    with pytest.raises(ReplicateError, match="without a replicate number"):
        paired_comparisons(unnumbered)


def test_comparisons_pair_by_replicate_and_skip_failed_ones() -> None:
    rows = _pair_rows([2.0, 2.5, 3.0, 2.5])
    rows = [r for r in rows if not (r.replicate == 3 and r.control == "reinit")]
    rows.append(ResultRow.failed("L1-k0-reinit", 1, 0, "reinit", 103, "boom", replicate=3))
    rows += [_cell(0, 0, TICKET, 0.50 + 0.07 * r + 0.001 * (-1) ** r, r) for r in range(4)]
    comparisons = paired_comparisons(results_frame(rows))
    table = comparisons_frame(comparisons)
    assert list(table.other) == ["reference", "reinit"]
    reinit = comparisons[1]
    assert reinit.replicates == (0, 1, 2) and reinit.differences == pytest.approx((2, 2.5, 3))
    assert reinit.verdict == BEAT
    text = render_report(results_frame(rows), {}, {}, [])
    low, high = _interval([2.0, 2.5, 3.0])
    assert (f"vs `reinit` 57.00%: **beat** (+2.50 points, 95% CI [{low:+.2f}, {high:+.2f}], "
            "3 replicates)") in text
    assert "ticket val top-1 63.00% (mean of 4 replicates)" in text
    assert "vs level-0 reference `L0-k0-none`" in text
    assert "paired t-interval on the per-replicate differences" in text


# -- files ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def study(tmp_path_factory) -> ArtifactStore:
    rows = _study()
    store = ArtifactStore(str(tmp_path_factory.mktemp("study")))
    write_report(store, [r.to_dict() for r in rows], {"run": {"name": "study"}}, {"grid": 1.0},
                 None, history=_history_frame(rows))
    return store


def test_tables_read_back_with_their_dtypes(study: ArtifactStore) -> None:
    results = pd.read_parquet(study.url("results.parquet"))
    assert len(results) == 3 * (1 + 2 * (1 + 2 * 3))
    assert str(results.replicate.dtype) == "Int64" and set(results.replicate) == {0, 1, 2}
    assert str(results.control_seed.dtype) == "Int64"
    assert results.control_seed.isna().tolist() == (results.control == TICKET).tolist()

    summary = pd.read_parquet(study.url("summary.parquet"))
    assert tuple(summary.columns) == SUMMARY_COLUMNS and len(summary) == 1 + 2 * (1 + 2 * 3)
    for column in ("level", "rewind_epoch"):
        assert str(summary[column].dtype) == "Int64", column
    assert summary.n.dtype == summary.failed.dtype == np.int64
    for column in SUMMARY_COLUMNS[6:]:
        assert summary[column].dtype == np.float64, column
    assert (summary.n == 3).all()
    assert pd.read_csv(study.url("summary.csv")).shape == summary.shape

    history = pd.read_parquet(study.url("history.parquet"))
    assert list(history.columns) == ["replicate", "cell", "epoch", "learning_rate", "loss",
                                     "val_loss", "top1", "top5"]
    assert history.replicate.dtype == history.epoch.dtype == np.int64
    for column in ("learning_rate", "loss", "val_loss", "top1", "top5"):
        assert history[column].dtype == np.float64, column
    assert set(history.cell) >= {"dense", "L0-k1-none", "L2-k1-random_mask"}

    report = study.read_text("report.md")
    assert "## Summary over replicates" in report
    assert "The grid was run as 3 replicates" in report
    assert "[`history.parquet`](history.parquet)" in report
    assert "| L1-k0-none | 1 | 0 | none | 3 | 0 | 80.00 |" in report
    assert "**beat**" in report  # tickets vs reinit: +16 points, consistently


def test_spark_reads_the_tables(spark, study: ArtifactStore) -> None:
    from pyspark.sql.types import DoubleType, LongType, StringType

    expected = {
        "results.parquet": {"replicate": LongType(), "control_seed": LongType(),
                            "rewind_epoch": LongType(), "top1": DoubleType()},
        "summary.parquet": {"n": LongType(), "rewind_epoch": LongType(),
                            "top1_ci_low": DoubleType(), "cell": StringType()},
        "history.parquet": {"replicate": LongType(), "epoch": LongType(),
                            "cell": StringType(), "learning_rate": DoubleType()},
    }
    for name, types in expected.items():
        frame = spark.read.parquet(study.url(name))
        schema = {f.name: f.dataType for f in frame.schema.fields}
        for column, kind in types.items():
            assert schema[column] == kind, (name, column, schema[column])
        assert frame.count() > 0


@pytest.mark.parametrize("name", ["accuracy_vs_weights", "accuracy_vs_weights_ci",
                                  "early_stop_vs_weights", "learning_curves"])
def test_figures_are_pngs(study: ArtifactStore, name: str) -> None:
    data = study.read_bytes(f"figures/{name}.png")
    assert data.startswith(PNG_SIGNATURE) and len(data) > 20_000
    image = Image.open(io.BytesIO(data))
    if name != "learning_curves":
        assert image.size == (round(FIGSIZE[0] * DPI), round(FIGSIZE[1] * DPI))
    assert len(image.convert("RGB").getcolors(maxcolors=1 << 16) or range(1 << 16)) > 50
    assert f"figures/{name}.png" in study.read_text("report.md")


def test_interval_bars_are_wider_than_the_range_for_three_replicates() -> None:
    df = results_frame(_study())
    limits = {}
    for bars in ("range", "ci"):
        fig = line_figure(df, "top1", "top-1", "t", y_scale=100.0, bars=bars)
        limits[bars] = fig.axes[0].get_ylim()
    assert limits["ci"][0] < limits["range"][0] and limits["ci"][1] > limits["range"][1]


def test_learning_curves_panels_and_skip() -> None:
    rows = _study(replicates=2)
    png = learning_curves(results_frame(rows), _history_frame(rows))
    assert png is not None and png.startswith(PNG_SIGNATURE)
    dense_only = [r for r in rows if r.cell == "dense"]
    assert learning_curves(results_frame(dense_only), _history_frame(dense_only)) is None
