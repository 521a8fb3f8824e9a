"""Several runs, one study: merge finished runs of the same settings and different seeds.

Runs made on different clusters (or at different times) with the same hashed settings but
another ``run.seed`` are replicates of one experiment. Their results and histories are
concatenated, the replicates renumbered in the order the runs are given, and the summary,
figures and report are made from all of them, as if one run had had them all.

Replicates must be distinct runs: a run given twice (under any spelling of its directory)
or two runs with one ``run.seed`` (same settings, same seed: the same replicates again)
would count one experiment twice — pseudo-replication, which narrows the intervals over
replicates without new evidence. Both are refused, naming the runs.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any

import pandas as pd
import yaml

from pipeline.config import flatten, from_dict, to_dict
from pipeline.experiment.run_layout import SETTINGS
from pipeline.experiment.settings import EXECUTION_ONLY, PruneJobSettings
from pipeline.store import ArtifactStore, local_path, normalize_url

log = logging.getLogger(__name__)

# What may differ between the runs of one study: where and how they ran, and their seeds.
MAY_DIFFER = frozenset(EXECUTION_ONLY) | {"run.seed"}


class AggregateError(ValueError):
    """Runs that cannot be merged, with the reason in one line."""


@dataclass
class MergedRuns:
    settings: PruneJobSettings
    results: pd.DataFrame
    history: pd.DataFrame | None
    sources: list[dict[str, Any]]


def _read_settings(store: ArtifactStore) -> dict[str, Any]:
    if not store.exists(SETTINGS):
        raise AggregateError(f"{store.root} is not a run directory (no {SETTINGS})")
    return yaml.safe_load(store.read_text(SETTINGS)) or {}


def _identity(url: str) -> tuple:
    """What makes two spellings of a run directory the same directory: for a local path,
    the directory itself (symlinks, ``..`` and trailing slashes resolved); else the URL."""
    path = local_path(url)
    if path is None:
        return ("url", normalize_url(url).rstrip("/"))
    real = os.path.realpath(path)
    try:
        info = os.stat(real)
    except OSError:
        return ("path", real)
    return ("inode", info.st_dev, info.st_ino)


def _names(items: list[str]) -> str:
    return ", ".join(items[:-1]) + " and " + items[-1]


def _check_given_once(run_urls: list[str]) -> None:
    groups: dict[tuple, list[str]] = {}
    for url in run_urls:
        groups.setdefault(_identity(url), []).append(url)
    for spellings in groups.values():
        if len(spellings) > 1:
            raise AggregateError(
                f"run {normalize_url(spellings[0])} is given {len(spellings)} times "
                f"({', '.join(repr(u) for u in spellings)}): counting a run twice is "
                "pseudo-replication; give each run once")


def _check_distinct_seeds(stores: list[ArtifactStore], settings: list[dict[str, Any]]) -> None:
    groups: dict[Any, list[str]] = {}
    for store, run_settings in zip(stores, settings, strict=True):
        seed = (run_settings.get("run") or {}).get("seed", 0)
        groups.setdefault(seed, []).append(store.root)
    for seed, roots in groups.items():
        if len(roots) > 1:
            raise AggregateError(
                f"{_names(roots)} share run.seed {seed}: the same settings and seed are the "
                "same replicates, and counting them twice is pseudo-replication; merge runs "
                "made with distinct run.seed values")


def _first_difference(a: dict[str, Any], b: dict[str, Any]) -> str | None:
    flat_a, flat_b = flatten(a), flatten(b)
    for key in sorted(set(flat_a) | set(flat_b)):
        if key in MAY_DIFFER:
            continue
        if flat_a.get(key) != flat_b.get(key):
            return f"{key}: {flat_a.get(key)!r} vs {flat_b.get(key)!r}"
    return None


def merge_runs(run_urls: list[str]) -> MergedRuns:
    """The runs' results and histories as one table each, replicates renumbered."""
    if len(run_urls) < 1:
        raise AggregateError("give at least one run directory")
    _check_given_once(run_urls)
    stores = [ArtifactStore(url) for url in run_urls]
    settings = [_read_settings(store) for store in stores]
    for store, other in zip(stores[1:], settings[1:], strict=True):
        difference = _first_difference(settings[0], other)
        if difference:
            raise AggregateError(f"{store.root} has other settings than {stores[0].root} "
                                 f"({difference}); only runs that differ in run.seed and "
                                 "execution settings can be merged")
    _check_distinct_seeds(stores, settings)
    # imported once the runs pass: the report's package loads Keras (seconds)
    from pipeline.report.writer import HISTORY_PARQUET, RESULTS_PARQUET

    tables, histories, sources, offset = [], [], [], 0
    for store, run_settings in zip(stores, settings, strict=True):
        if not store.exists(RESULTS_PARQUET):
            raise AggregateError(f"{store.root} has no {RESULTS_PARQUET}: the run has not finished")
        table = pd.read_parquet(store.path(RESULTS_PARQUET))
        count = int(table["replicate"].max()) + 1 if len(table) else 0
        table["replicate"] = table["replicate"] + offset
        tables.append(table)
        if store.exists(HISTORY_PARQUET):
            history = pd.read_parquet(store.path(HISTORY_PARQUET))
            history["replicate"] = history["replicate"] + offset
            histories.append(history)
        sources.append({"run": store.root, "seed": run_settings.get("run", {}).get("seed"),
                        "replicates": count, "first_replicate": offset})
        offset += count
    merged = from_dict(PruneJobSettings, settings[0])
    history = pd.concat(histories, ignore_index=True) if len(histories) == len(stores) else None
    return MergedRuns(merged, pd.concat(tables, ignore_index=True), history, sources)


def aggregate_runs(run_urls: list[str], output: str) -> str:
    """Merge ``run_urls`` into ``output``: results, summary, history, figures and report;
    returns the report's URL."""
    from pipeline.report import write_report

    merged = merge_runs(run_urls)
    store = ArtifactStore(output)
    rows = [{k: (None if pd.isna(v) else v) for k, v in row.items()}
            for row in merged.results.to_dict("records")]
    store.write_json({"runs": merged.sources}, "runs.json")
    settings = to_dict(merged.settings)
    settings["run"]["replicates"] = sum(s["replicates"] for s in merged.sources)
    log.info("aggregate: %d runs, %d replicates, %d rows", len(run_urls),
             settings["run"]["replicates"], len(rows))
    return write_report(store, rows, settings, {}, None, history=merged.history)
