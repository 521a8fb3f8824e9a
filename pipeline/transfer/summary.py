"""The transfer report's own section: every line of the main figure, side by side.

On the target, at each source level and rewind point: the source ticket transferred, its
controls (a random mask over the transferred weights, the ticket's mask over a fresh
initialization), and the ticket found on the target itself when a target run is given;
then the two unpruned baselines, the dense source network transferred (the level-0 cell)
and the dense network trained from scratch on the target (the dense row).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from pipeline.report.statistics import CONFIDENCE, summarize
from pipeline.report.table import is_missing, markdown_table, percent, results_frame
from pipeline.tickets.controls import TICKET

TARGET_TICKET = "target_ticket"  # control name of the rows read from the target run
MODES = {"full": "every surviving weight trains, the mask held",
         "head_only": "only the classifier trains"}


def _mean_ci(row: Mapping[str, Any] | None) -> str:
    if row is None or not row.get("n"):
        return "–"
    text = percent(row["top1_mean"])
    if not is_missing(row["top1_ci_low"]):
        text += f" [{percent(row['top1_ci_low'])}, {percent(row['top1_ci_high'])}]"
    return f"{text} (n={int(row['n'])})"


def transfer_markdown(rows: Sequence[Mapping[str, Any]], settings: Mapping[str, Any],
                      controls: Sequence[str]) -> str:
    """``## Transfer`` with the table of ticket, controls, target tickets and baselines."""
    summary = summarize(results_frame(rows))
    by_key = {(r["level"], r["rewind_epoch"], r["control"]): r
              for r in summary.to_dict("records") if r["cell"] != "dense"}
    dense = next((r for r in summary.to_dict("records") if r["cell"] == "dense"), None)
    t = settings["transfer"]
    has_target = any(key[2] == TARGET_TICKET for key in by_key)
    columns = [TICKET, *controls, *([TARGET_TICKET] if has_target else [])]
    names = {TICKET: "source ticket", "reinit": "reinit (ticket mask, new init)",
             "random_mask": "random mask (transferred weights)",
             TARGET_TICKET: "ticket found on the target"}
    header = ["level", "rewind k", "weights left (%)", *[names.get(c, c) for c in columns]]
    body = []
    levels = sorted({key[0] for key in by_key if key[0] and key[0] > 0})
    rewinds = sorted({key[1] for key in by_key if key[1] is not None})
    for level in levels:
        for k in rewinds:
            ticket = by_key.get((level, k, TICKET))
            if ticket is None:
                continue
            body.append([str(level), str(k), percent(ticket["weights_remaining_prunable_mean"]),
                         *[_mean_ci(by_key.get((level, k, c))) for c in columns]])
    baselines = [f"- dense source network transferred, rewind k={k}: "
                 f"{_mean_ci(by_key.get((0, k, TICKET)))}" for k in rewinds]
    baselines.append(f"- dense network trained from scratch on the target: {_mean_ci(dense)}")
    shots = int(t.get("shots_per_class") or 0)
    data = (f"{shots} images per class of the target's training split, drawn anew for each "
            "replicate" if shots else "the target's whole training split")
    return "\n\n".join([
        "## Transfer",
        f"Tickets of the source run `{t['source']}` trained on the target data set "
        f"`{settings['data']['url']}` ({data}) for {settings['train']['epochs']} epochs from "
        f"step 0 ({t['mode']} mode: {MODES.get(t['mode'], t['mode'])}). "
        f"The classifier is new for the target's classes and {t['classifier']} "
        f"(`transfer.classifier`). Top-1 val accuracy on the target in percent: mean "
        f"[{100 * CONFIDENCE:g}% t-interval] over the replicates; the source's replicate i "
        f"is transferred in replicate i."
        + (" The target tickets are read from the target run's own table: they were "
           "found and trained on the target by that run's settings." if has_target else ""),
        markdown_table(header, body, ["r", "r", "r"] + ["l"] * len(columns))
        if body else "No transferred ticket finished.",
        "Unpruned baselines (top-1 %):\n\n" + "\n".join(baselines),
    ])


def target_ticket_rows(target_results: pd.DataFrame, levels: Sequence[int],
                       rewinds: Sequence[int], replicates: int) -> list[dict[str, Any]]:
    """The target run's finished tickets at ``levels`` × ``rewinds``, relabelled
    ``target_ticket`` (one row per replicate below ``replicates``)."""
    from pipeline.report.result_row import ResultRow

    df = target_results
    keep = ((df["status"] == "ok") & (df["control"] == TICKET) & df["level"].isin(levels)
            & df["rewind_epoch"].isin(rewinds) & (df["replicate"] < replicates))
    out = []
    chosen = df[keep].astype(object)
    for row in chosen.where(chosen.notna(), None).to_dict("records"):
        base = ResultRow.from_mapping(row)
        out.append(ResultRow.relabelled(base, TARGET_TICKET).to_dict())
    return out
