"""Provenance: every ticket traceable to the checkpoints and masks it was built from.

Three records make the chain of a replicate checkable:

* each dense checkpoint's record (``dense/epoch-<e>.json``) holds the SHA-256 of its bytes
  and of the epoch before it (``parent_sha256``), so the epochs form one trajectory;
* each mask file has a record beside it (``masks/L<l>-k<k>.source.json``): the SHA-256 of its
  bytes and of the weights it was computed from (the dense run's last epoch for level 1 or
  one-shot, the level ``l - 1`` ticket of the same chain for IMP);
* each cell's ``result.json`` holds ``provenance``: the SHA-256 of the rewind checkpoint and
  of the mask file it actually read, and, for a control, of the masks and weights it drew.

:func:`verify_replicate` recomputes every digest and follows the links; a resumed run
retrains a finished cell whose inputs changed under it (:func:`stale_inputs`).
"""

from __future__ import annotations

import hashlib
from typing import Any

from pipeline.experiment.cells import Cell
from pipeline.experiment.run_layout import TRANSFER_DIR, RunLayout
from pipeline.store import StoreError
from pipeline.tickets.controls import TICKET
from pipeline.train.checkpoints import CorruptCheckpoint, checkpoint_record, load_verified


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def masks_record_parts(parts: tuple[str, ...]) -> tuple[str, ...]:
    """The record beside mask file ``parts`` (``masks/L1-k0.npz`` →
    ``masks/L1-k0.source.json``; not ``L1-k0.json``, which would read as a checkpoint's)."""
    *head, name = parts
    return (*head, name.rsplit(".", 1)[0] + ".source.json")


def write_masks_record(layout: RunLayout, parts: tuple[str, ...], data: bytes,
                       source: str, source_sha256: str) -> None:
    layout.store.write_json({"sha256": sha256(data), "source": source,
                             "source_sha256": source_sha256}, *masks_record_parts(parts))


def cell_inputs(layout: RunLayout, cell: Cell, rewind_dir_store: Any
                ) -> dict[str, Any]:
    """What a cell would read now: the digests of its rewind checkpoint and mask file."""
    inputs: dict[str, Any] = {
        "rewind": checkpoint_record(rewind_dir_store, layout.dense_weights(cell.rewind_epoch))
        ["sha256"]}
    if not cell.is_reference:
        inputs["masks"] = sha256(layout.store.read_bytes(*layout.masks(cell.level,
                                                                       cell.rewind_epoch)))
    return inputs


def stale_inputs(recorded: dict[str, Any] | None, current: dict[str, Any]) -> list[str]:
    """Which of a finished cell's inputs changed since it trained (none for rows made
    before provenance was recorded: nothing to compare)."""
    if not recorded:
        return []
    return [key for key, value in current.items() if recorded.get(key) != value]


def _dense_chain(layout: RunLayout, epochs: int) -> tuple[dict[int, str], list[str]]:
    digests, problems = {}, []
    store = layout.dense_dir()
    for epoch in range(epochs + 1):
        name = layout.dense_weights(epoch)
        try:
            _, digests[epoch] = load_verified(store, name)
        except CorruptCheckpoint as exc:
            problems.append(f"dense epoch {epoch}: {exc}")
            continue
        parent = checkpoint_record(store, name).get("parent_sha256")
        if epoch and parent is not None and digests.get(epoch - 1) not in (None, parent):
            problems.append(f"dense epoch {epoch} was not trained from the epoch-{epoch - 1} "
                            f"checkpoint there now (parent {parent[:12]}…, found "
                            f"{digests[epoch - 1][:12]}…): two dense trajectories are mixed")
    return digests, problems


def verify_replicate(layout: RunLayout, cells: list[Cell], epochs: int,
                     oneshot: bool, transferred: bool = False) -> list[str]:
    """One line per inconsistency of a replicate's dense run, masks and finished cells.
    A transfer run's rewind points and masks were moved in from its source: their own
    chain is the source's to verify, so only its cells' links to them are checked here."""
    if transferred:
        dense, problems = {}, []
        for epoch in sorted({c.rewind_epoch for c in cells}):
            try:
                _, dense[epoch] = load_verified(layout.rewind_dir(True),
                                                layout.dense_weights(epoch))
            except CorruptCheckpoint as exc:
                problems.append(f"transferred rewind epoch {epoch}: {exc}")
    else:
        dense, problems = _dense_chain(layout, epochs)
    trained: dict[str, str] = {}
    for cell in cells:
        if not layout.store.exists(*layout.cell_result(cell)):
            continue
        row = layout.store.read_json(*layout.cell_result(cell))
        if row.get("status") != "ok":
            continue
        try:
            _, trained[cell.name] = load_verified(layout.cell_dir(cell), layout.CELL_WEIGHTS)
        except CorruptCheckpoint as exc:
            problems.append(f"{cell.name}: {exc}")
        recorded = row.get("provenance")
        if recorded is None:
            problems.append(f"{cell.name}: no provenance recorded (trained before it was)")
            continue
        rewind = dense.get(cell.rewind_epoch)
        if recorded.get("rewind") != rewind:
            problems.append(f"{cell.name}: built on a rewind checkpoint (epoch "
                            f"{cell.rewind_epoch}, {str(recorded.get('rewind'))[:12]}…) that is "
                            f"not this replicate's dense epoch {cell.rewind_epoch} "
                            f"({str(rewind)[:12]}…)")
        if not cell.is_reference:
            parts = layout.masks(cell.level, cell.rewind_epoch)
            try:
                masks = sha256(layout.store.read_bytes(*parts))
            except StoreError:
                masks = None
            if recorded.get("masks") != masks:
                problems.append(f"{cell.name}: built on a mask file ({'/'.join(parts)}) that "
                                f"has changed since")
    for cell in cells:
        if transferred or cell.is_reference or cell.control != TICKET:
            continue
        parts = layout.masks(cell.level, cell.rewind_epoch)
        if not layout.store.exists(*masks_record_parts(parts)):
            continue
        record = layout.store.read_json(*masks_record_parts(parts))
        if oneshot or cell.level == 1:
            source, digest = f"dense epoch {epochs}", dense.get(epochs)
        else:
            previous = Cell(cell.level - 1, cell.rewind_epoch)
            source, digest = previous.name, trained.get(previous.name)
        if digest is not None and record.get("source_sha256") != digest:
            problems.append(f"{'/'.join(parts)}: computed from weights that are not {source} "
                            f"as it is now")
    return sorted(set(problems))


def verify_run(run: Any) -> list[str]:
    """Every replicate of ``run`` (a :class:`~pipeline.experiment.run_dir.RunDirectory`)
    checked; one line per inconsistency, prefixed by its replicate when there are several."""
    from pipeline.experiment.cells import grid_cells
    from pipeline.experiment.dense_stage import dense_final_epoch

    replicates = run.replicates()
    problems = []
    for rep in replicates:
        found = verify_replicate(rep, grid_cells(rep.settings), dense_final_epoch(rep),
                                 rep.settings.prune.method == "oneshot",
                                 transferred=rep.store.is_dir(TRANSFER_DIR))
        prefix = f"replicate {rep.replicate_index}: " if len(replicates) > 1 else ""
        problems += [prefix + line for line in found]
    return problems


def provenance_markdown(problems: list[str]) -> str:
    """The report's account of :func:`verify_run`."""
    if not problems:
        return ("**Provenance verified**: every dense checkpoint follows from the one before "
                "it, every mask file from the weights it was computed from, and every cell "
                "from its replicate's rewind checkpoint and mask file, as they are now "
                "(SHA-256; `jobs/verify_run.py` checks it again).")
    listed = "\n".join(f"- {line}" for line in problems[:50])
    more = f"\n- … and {len(problems) - 50} more" if len(problems) > 50 else ""
    return (f"**Provenance: {len(problems)} inconsistencies** (`jobs/verify_run.py` lists "
            f"them again):\n\n{listed}{more}")


def provenance_columns(row: dict[str, Any]) -> dict[str, Any]:
    """A result row's table columns of its provenance (the digests it trained from)."""
    recorded = row.get("provenance") or {}
    return {"rewind_sha256": recorded.get("rewind"), "masks_sha256": recorded.get("masks")}
