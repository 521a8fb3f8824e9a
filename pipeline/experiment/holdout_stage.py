"""Stage 0 (``data.holdout_per_class: N > 0``): carve the holdout before any training.

Val reports, it does not choose. The holdout is N images of every class drawn from the
train split with a seed derived from the run's seed (not a replicate's: every replicate
shares one holdout) and written once below the run directory (``splits/``, see
:mod:`pipeline.data.holdout`). Every model of the run then trains on ``splits/train`` (the
dense run, the tickets, the controls and the level-0 references alike) and is evaluated
after every epoch on the holdout and on val; the early-stop epoch reads the holdout's loss.
With N = 0 nothing changes: the facts come back as they went in.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from pipeline.experiment.preflight import DatasetFacts, PreflightError
from pipeline.experiment.run_layout import RunLayout
from pipeline.experiment.settings import PruneJobSettings
from pipeline.seeding import derive_seed


def holdout_seed(run_seed: int) -> int:
    """The seed of a run's holdout draw, from the run's own ``run.seed``."""
    return derive_seed(run_seed, "holdout")


def spark_mapper(spark) -> Any:  # noqa: ANN001
    """Run the carve's per-file copies as one Spark task each, results in order."""
    def mapper(fn, items: list) -> list:  # noqa: ANN001
        if not items:
            return []
        sc = spark.sparkContext
        sc.setJobDescription(f"holdout: copy {len(items)} train file(s) less the holdout")
        return sc.parallelize(items, len(items)).map(fn).collect()
    return mapper


def with_holdout(root: RunLayout, settings: PruneJobSettings, facts: DatasetFacts,
                 spark=None) -> DatasetFacts:  # noqa: ANN001
    """``facts`` training on the train split less the holdout and naming the holdout, the
    carve written below ``root`` (the run directory, not a replicate's) unless complete
    already; ``facts`` unchanged when ``data.holdout_per_class`` is 0 or already applied.
    ``settings`` are the run's (their ``run.seed`` seeds the draw). Raises PreflightError
    when a class cannot give the holdout and keep images to train on."""
    from pipeline.data.holdout import HoldoutError, carve_holdout

    per_class = settings.data.holdout_per_class
    if not per_class or facts.holdout_url:
        return facts
    try:
        carved = carve_holdout(facts.train_url, root.splits_url(), per_class,
                               holdout_seed(settings.run.seed),
                               spark_mapper(spark) if spark is not None else None)
    except HoldoutError as exc:
        raise PreflightError(str(exc)) from None
    return dataclasses.replace(facts, train_url=carved.train_url, train_rows=carved.train_rows,
                               holdout_url=carved.holdout_url,
                               holdout_rows=carved.holdout_rows)
