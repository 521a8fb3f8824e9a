"""Settings of a transfer run (``jobs/transfer_tickets.py``).

A transfer run is a run of its own on the target data set: the source run's settings with
``data.url`` pointing at the target, updated by the transfer's config file and ``--set``
flags, plus the ``transfer.*`` section. It keeps the source's model (a ticket is a mask
over that architecture) and, unless overridden, its training budget; its run directory
defaults to ``<source run>/transfer/``.

A target run (``--target-run``) puts the tickets found on the target beside the transferred
ones, so it must have found and trained them as the transfer trains: on the same data, with
the same settings of every key that defines training (:func:`check_target_run`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import yaml

from pipeline.config import (
    ConfigError,
    check_choices,
    flatten,
    load_config,
    require,
    section,
    setting,
    to_dict,
)
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


def source_settings(source: str, flag: str = "--from") -> dict[str, Any]:
    """The resolved settings of the run at ``source`` (its ``settings.yaml``); errors name
    ``flag``, the option that gave the run."""
    store = ArtifactStore(normalize_url(source))
    try:
        data = yaml.safe_load(store.read_text(SETTINGS))
    except StoreError:
        raise ConfigError(f"{flag}: {store.root} is not a run directory (no {SETTINGS})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{flag}: {store.url(SETTINGS)} does not hold settings")
    return data


# The settings that define how a run finds and trains its tickets, compared between a
# transfer and its target run: whole sections, less the keys named in TRAINING_EXCEPT.
TRAINING_SECTIONS = ("data", "model", "train", "prune")
# single keys of other sections; a key this code's settings lack is skipped
TRAINING_KEYS = ("rewind.optimizer", "grid.data_order")
TRAINING_EXCEPT = (
    "data.url",  # compared on its own, as normalized URLs
    "prune.levels",  # how far a run prunes; level L is the same ticket in a longer run
)
# early_bird.* decides training only when it stops dense training early (tracking alone
# changes nothing); then every key of the section but ``compare`` (extra rows) matters
EARLY_BIRD = "early_bird."
EARLY_BIRD_EXCEPT = ("early_bird.compare",)


def training_keys(flat: dict[str, Any]) -> list[str]:
    """The keys of ``flat`` (flattened settings) that define training, in order."""
    stops = bool(flat.get("early_bird.enabled") and flat.get("early_bird.stop"))
    out = []
    for key in flat:
        if key in TRAINING_EXCEPT or key in EARLY_BIRD_EXCEPT:
            continue
        if key.split(".", 1)[0] in TRAINING_SECTIONS or key in TRAINING_KEYS:
            out.append(key)
        elif stops and key.startswith(EARLY_BIRD):
            out.append(key)
    return out


def _resolved(data: dict[str, Any], flag: str) -> dict[str, Any]:
    """Flattened settings of a main-job run, with the defaults of keys it predates."""
    try:
        return flatten(to_dict(load_config(PruneJobSettings, base=data)))
    except ConfigError as exc:
        raise ConfigError(f"{flag}: {exc}") from None


def check_target_run(settings: TransferJobSettings) -> None:
    """Raise ConfigError (one line, naming the first key) unless the target run was made on
    the transfer's data with the transfer's training settings. Those are the source's unless
    the transfer overrides them (``--set train.epochs=30``), so the message says which."""
    t = settings.transfer
    if not t.target_run:
        return
    target_data = source_settings(t.target_run, "--target-run")
    target_url = (target_data.get("data") or {}).get("url", "")
    if not target_url or normalize_url(target_url) != normalize_url(settings.data.url):
        raise ConfigError(f"--target-run: {normalize_url(t.target_run)} was trained on "
                          f"{target_url or '(no data.url)'}, not on {settings.data.url}")
    target = _resolved(target_data, "--target-run")
    source = _resolved(source_settings(t.source), "--from") if t.source else {}
    ours = flatten(to_dict(settings))
    for key in dict.fromkeys(training_keys(ours) + training_keys(target)):
        value, theirs = ours.get(key), target.get(key)
        if value != theirs:
            # the data section is the transfer's own; the rest comes from the source
            side = ("source" if not key.startswith("data.") and source.get(key) == value
                    else "transfer")
            raise ConfigError(
                f"--target-run: {key} differs ({side} {value}, target {theirs}); the tickets "
                "found on the target must be trained as the transferred ones: give a target "
                "run made with the same training settings")


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
    check_target_run(settings)
    return settings
