"""Settings of a transfer run (``jobs/transfer_tickets.py``).

A transfer run is a run of its own on the target data set: the source run's settings with
``data.url`` pointing at the target, updated by the transfer's config file and ``--set``
flags, plus the ``transfer.*`` section. It keeps the source's model (a ticket is a mask
over that architecture) and, unless overridden, its training budget; its run directory
defaults to ``<source run>/transfer/``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import yaml

from pipeline.config import ConfigError, check_choices, load_config, require, section, setting
from pipeline.experiment.run_layout import SETTINGS
from pipeline.experiment.settings import EXECUTION_ONLY, PruneJobSettings
from pipeline.store import ArtifactStore, StoreError, normalize_url


@dataclass
class TransferSettings:
    source: str = setting("", "run directory of the finished source run (--from)")
    target_run: str = setting(
        "", "a finished run on the target data set: its tickets join the table as the "
        "target_ticket line (--target-run)"
    )
    classifier: Literal["dense", "random"] = setting(
        "dense", "mask of the new classifier: dense (as Morcos et al.) or random at the "
        "source classifier's density"
    )
    mode: Literal["full", "head_only"] = setting(
        "full", "full (every surviving weight trains, the mask held) or head_only (only "
        "the classifier trains)"
    )
    shots_per_class: int = setting(
        0, "few-shot: train on N images per class, drawn with each replicate's seed (0 = "
        "the whole target train split); the dense-from-scratch baseline trains on the same"
    )
    levels: list[int] = setting([], "source pruning levels to transfer ([] = all)")

    def __post_init__(self) -> None:
        check_choices(self)
        require(self.shots_per_class >= 0, "shots_per_class", "must be 0 or more")
        require(all(level >= 1 for level in self.levels), "levels",
                f"pruning levels start at 1, got {self.levels}")


@dataclass
class TransferJobSettings(PruneJobSettings):
    transfer: TransferSettings = section(TransferSettings)

    # the target run only adds rows read from elsewhere: it does not change what is trained
    execution_only: ClassVar[tuple[str, ...]] = (*EXECUTION_ONLY, "transfer.target_run")

TRANSFER_DIR_NAME = "transfer"


def source_settings(source: str) -> dict[str, Any]:
    """The resolved settings of the source run at ``source`` (its ``settings.yaml``)."""
    store = ArtifactStore(normalize_url(source))
    try:
        data = yaml.safe_load(store.read_text(SETTINGS))
    except StoreError:
        raise ConfigError(f"--from: {store.root} is not a run directory (no {SETTINGS})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"--from: {store.url(SETTINGS)} does not hold settings")
    return data


def load_transfer_settings(source: str, target_data: str, config: str | None = None,
                           overrides: list[str] | tuple[str, ...] = (),
                           target_run: str = "") -> TransferJobSettings:
    """The transfer run's settings: the source's, moved to ``target_data``, then ``config``
    and ``overrides``. Raises ConfigError when they change the source's model."""
    base = source_settings(source)
    source_model = dict(base.get("model") or {})
    base["data"] = {"url": target_data}
    base["run"] = {**(base.get("run") or {}), "name": TRANSFER_DIR_NAME,
                   "output": normalize_url(source).rstrip("/") + "/" + TRANSFER_DIR_NAME}
    # a transfer cell starts a fresh optimizer on the target (cell_run.start_state)
    base["rewind"] = {**(base.get("rewind") or {}), "optimizer": "reset"}
    base["transfer"] = {"source": normalize_url(source), "target_run": target_run}
    settings = load_config(TransferJobSettings, config, overrides, base=base)
    source_parsed = load_config(PruneJobSettings, base={"model": source_model}).model
    if settings.model != source_parsed:
        changed = sorted(k for k, v in vars(settings.model).items()
                         if getattr(source_parsed, k) != v)
        raise ConfigError(f"model.{changed[0]}: a transfer keeps the source run's model "
                          f"({source_parsed}); train a new source run to change it")
    return settings
