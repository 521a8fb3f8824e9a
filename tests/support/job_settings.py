"""Settings for the main-job tests: conf/local.yaml shrunk to seconds per cell."""

from __future__ import annotations

from pathlib import Path

from pipeline.config import load_config
from pipeline.experiment.settings import PruneJobSettings

LOCAL_CONF = Path(__file__).resolve().parents[2] / "conf" / "local.yaml"


def tiny_settings(data_url: str, output: str, *overrides: str) -> PruneJobSettings:
    """Two epochs, two levels, rewind points 0 and 1, both controls, small rounds; the
    output layer pruned like the others, so every level keeps exactly 0.5 ** L."""
    return load_config(
        PruneJobSettings,
        LOCAL_CONF,
        [
            f"data.url={data_url}",
            f"run.output={output}",
            "run.replicates=1",
            "train.epochs=2",
            "train.round_images_per_worker=100",
            "prune.levels=2",
            "prune.fraction_per_level=0.5",
            "prune.strategy=global",
            "prune.classifier_fraction=0.5",
            "rewind.epochs=[0, 1]",
            "grid.controls=[reinit, random_mask]",
            *overrides,
        ],
    )
