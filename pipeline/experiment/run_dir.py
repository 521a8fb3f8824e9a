"""The run directory: ``<run.output>/<run.name>-<hash of the non-default settings>/``.

Settings that only say where or how a run executes (``execution_only`` of the settings
class) are left out of the hash, so the same experiment on a bigger cluster resumes the
same directory. Each stage owns a sub-directory and writes its completion marker last; a
stage whose marker exists is skipped on the next run.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from pipeline.config import dump_yaml, from_dict, settings_hash
from pipeline.experiment.cell_context import CellContext
from pipeline.experiment.preflight import DatasetFacts
from pipeline.experiment.run_layout import SETTINGS, RunLayout
from pipeline.experiment.settings import PruneJobSettings
from pipeline.models.spec import ModelSpec
from pipeline.seeding import replicate_seed
from pipeline.store import ArtifactStore, normalize_url
from pipeline.tickets.masked_spec import MaskedSpec

STAGES = ("dense", "masks", "grid", "report")


def run_name(settings: PruneJobSettings) -> str:
    return f"{settings.run.name}-{settings_hash(settings, exclude=settings.execution_only)}"


def replicate_settings(settings: PruneJobSettings, replicate: int) -> PruneJobSettings:
    """``settings`` with ``run.seed`` replaced by the seed of replicate ``replicate``."""
    run = dataclasses.replace(settings.run, seed=replicate_seed(settings.run.seed, replicate))
    return dataclasses.replace(settings, run=run)


class RunDirectory(RunLayout):
    """The driver's view of a run, or of one replicate of it (``replicate``): its layout,
    settings, stage markers and timings.

    A replicate's settings are the run's with ``run.seed`` replaced by the replicate's own
    seed, so every stage below works on a replicate as on a run of its own.
    """

    def __init__(self, settings: PruneJobSettings, replicate: int | None = None) -> None:
        root = RunLayout(normalize_url(settings.run.output).rstrip("/") + "/" + run_name(settings))
        super().__init__(root.url if replicate is None else root.replicate(replicate).url)
        self.root = root
        self.run_settings = settings
        self.replicate_index = replicate
        self.settings = settings if replicate is None else replicate_settings(settings, replicate)

    def replicates(self) -> list[RunDirectory]:
        """The run's ``run.replicates`` replicates."""
        return [RunDirectory(self.run_settings, i) for i in range(self.run_settings.run.replicates)]

    @property
    def layout(self) -> RunLayout:
        """The paths alone (what executors receive)."""
        return RunLayout(self.url)

    def write_settings(self) -> None:
        """The resolved settings, for people (YAML) and for reruns to compare against."""
        self.store.write_text(dump_yaml(self.settings), SETTINGS)

    def to_remote(
        self, facts: DatasetFacts, spec: ModelSpec, dense_workers: int, policy: dict[str, Any]
    ) -> CellContext:
        """The picklable context grid tasks receive. ``spec`` is the plain model (cells train
        its masked twin); cells train with the dense stage's ``dense_workers`` replicas."""
        s = self.settings
        return CellContext(
            layout=self.layout, train_url=facts.train_url, val_url=facts.val_url,
            holdout_url=facts.holdout_url, spec=MaskedSpec(spec),
            num_classes=facts.num_classes,
            train_images=facts.train_rows, train=s.train,
            workers=dense_workers, rewind_optimizer=s.rewind.optimizer, policy=policy,
            run_seed=s.run.seed, replicate=self.replicate_index or 0,
            reader_workers=s.grid.reader_workers, eval_batch_size=s.eval.batch_size,
            deterministic=s.run.deterministic, data_order=s.grid.data_order,
        )

    def is_done(self, stage: str) -> bool:
        return self.store.is_complete(stage)

    def stage_info(self, stage: str) -> dict[str, Any]:
        return self.store.read_json(stage, "_COMPLETE") if self.is_done(stage) else {}

    def mark_done(self, stage: str, info: dict[str, Any]) -> None:
        self.store.mark_complete(stage, info=info)

    def invalidate(self, *stages: str) -> None:
        """Drop the markers of ``stages`` (their artifacts stay; finished cells are reused)."""
        for stage in stages:
            self.store.delete(stage, "_COMPLETE")

    def timings(self) -> dict[str, float]:
        """Seconds each finished stage took (when it ran, not when it was skipped)."""
        return {s: float(self.stage_info(s).get("seconds", 0.0)) for s in STAGES
                if self.is_done(s)}


@contextmanager
def stage_timer() -> Iterator[dict[str, float]]:
    """Yields a dict whose ``seconds`` is filled in when the block ends."""
    out: dict[str, float] = {}
    start = time.monotonic()
    try:
        yield out
    finally:
        out["seconds"] = round(time.monotonic() - start, 3)


def read_settings(store: ArtifactStore) -> PruneJobSettings:
    """The settings a run directory (``store``) was written with; a transfer run's
    ``transfer`` section is left out, the rest is a main job's."""
    import yaml

    stored = yaml.safe_load(store.read_text(SETTINGS)) or {}
    stored.pop("transfer", None)
    return from_dict(PruneJobSettings, stored)
