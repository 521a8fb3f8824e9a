"""The configuration reference: every setting of every job, rendered as Markdown.

It reads the settings dataclasses that ``--help`` reads (:func:`pipeline.config.describe`,
with the field types of :func:`pipeline.config.field_types`), so a setting added in code appears
in the reference without anyone writing it twice. The docs build renders the page through a
MkDocs hook (``docs/hooks/config_reference.py``) and never stores it. Nothing here loads
Spark, Keras or TensorFlow.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pipeline.config import describe, field_types

COLUMNS = ("key", "type", "default", "choices", "description")
# the mark of a key that a settings class lists in ``execution_only``: it says where or how a
# run executes, not what it computes, so it is left out of the run directory's hash
UNHASHED = "*(not hashed)*"


@dataclass(frozen=True)
class JobReference:
    """One job of the reference: its title, its script and its settings dataclass."""

    title: str
    script: str
    settings: type
    intro: str = ""


def default_jobs() -> tuple[JobReference, ...]:
    """The jobs that take ``--config`` and ``--set``, in the order the reference lists them."""
    from pipeline.data.settings import IngestSettings
    from pipeline.ensembles.settings import EnsembleJobSettings
    from pipeline.experiment.settings import PruneJobSettings
    from pipeline.transfer.settings import TransferJobSettings

    return (
        JobReference(
            "Ingest", "jobs/ingest_imagenet.py", IngestSettings,
            "The keys have no section: `--set image_size=160`.",
        ),
        JobReference(
            "The main job", "jobs/prune_imagenet.py", PruneJobSettings,
            f"Keys marked {UNHASHED} say where or how a run executes, not what it computes: "
            f"they are left out of the hash that names the run directory.",
        ),
        JobReference("Transfer", "jobs/transfer_tickets.py", TransferJobSettings,
                     "Its settings start from the source run's."),
        JobReference("Ensembles", "jobs/ensemble_tickets.py", EnsembleJobSettings),
    )


def _choices(tp: Any) -> list[Any]:
    """The values of every ``Literal`` in annotation ``tp`` (through unions)."""
    if typing.get_origin(tp) is typing.Literal:
        return list(typing.get_args(tp))
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        return [value for arg in typing.get_args(tp) for value in _choices(arg)]
    return []


def type_label(tp: Any) -> str:
    """A short name for annotation ``tp``: ``int``, ``list[str]``, ``float | None``; a
    ``Literal`` is named by the type of its values (the values go to the choices column)."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is typing.Literal:
        return " | ".join(dict.fromkeys(type(a).__name__ for a in args))
    if origin in (typing.Union, types.UnionType):
        return " | ".join(dict.fromkeys(type_label(a) for a in args))
    if origin is list:
        return f"list[{type_label(args[0])}]" if args else "list"
    if tp is type(None):
        return "None"
    if tp is Any:
        return "any"
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def value_text(value: Any) -> str:
    """A default or a choice as a config file spells it (``--help``'s JSON form)."""
    return json.dumps(value, ensure_ascii=False)


def escape_cell(text: str) -> str:
    """``text`` safe in a Markdown table cell: ``|`` escaped, ``<``/``>`` and ``*`` as text."""
    return (text.replace("\\", "\\\\").replace("|", "\\|").replace("*", "\\*")
            .replace("<", "&lt;").replace(">", "&gt;").replace("\n", " "))


def _code(text: str) -> str:
    """``text`` as a code span; Python-Markdown's tables leave a ``|`` inside one alone."""
    fence = "``" if "`" in text else "`"
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _leaf_type(cls: type, key: str) -> Any:
    """The annotation of dotted ``key`` below dataclass ``cls``."""
    tp: Any = cls
    for part in key.split("."):
        tp = field_types(tp)[part]
    return tp


def _table(cls: type, rows: Sequence[tuple[str, str, Any]], prefix: str,
           unhashed: Sequence[str] = ()) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for key, text, default in rows:
        tp = _leaf_type(cls, key)
        cells = (
            _code(prefix + key),
            escape_cell(type_label(tp)),
            _code(value_text(default)),
            ", ".join(_code(value_text(c)) for c in _choices(tp)),
            escape_cell(text) + (f" {UNHASHED}" if prefix + key in unhashed else ""),
        )
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def settings_table(cls: type, prefix: str = "") -> str:
    """A Markdown table of the leaf settings of dataclass ``cls`` (nested sections included,
    their keys dotted), one row each: key, type, default, choices, description. ``prefix``
    (``"train."``) is put before every key."""
    return _table(cls, describe(cls), prefix, _unhashed(cls))


def _unhashed(cls: type) -> tuple[str, ...]:
    return tuple(getattr(cls, "execution_only", ()))


def _sections(cls: type) -> tuple[list[str], list[str]]:
    """Names of the top-level leaf fields and of the sections of dataclass ``cls``."""
    hints = field_types(cls)
    leaves, sections = [], []
    for f in dataclasses.fields(cls):
        (sections if dataclasses.is_dataclass(hints[f.name]) else leaves).append(f.name)
    return leaves, sections


def _inherited(cls: type, earlier: Sequence[JobReference]) -> tuple[JobReference | None, set[str]]:
    """The earlier job whose settings ``cls`` extends, and the sections it shares unchanged."""
    for job in earlier:
        base = job.settings
        if base is not cls and issubclass(cls, base):
            ours, theirs = field_types(cls), field_types(base)
            mine, base_defaults = cls(), base()
            shared = {
                name for name in _sections(base)[1]
                if ours.get(name) is theirs[name]
                and getattr(mine, name) == getattr(base_defaults, name)
            }
            return job, shared
    return None, set()


def job_markdown(job: JobReference, earlier: Sequence[JobReference] = ()) -> str:
    """The reference of one job: a table of its top-level keys, then one per section; the
    sections it shares with the earlier job whose settings it extends are named, not repeated."""
    base, shared = _inherited(job.settings, earlier)
    parts = [f"## {job.title}: `{job.script}`"]
    intro = job.intro
    if base is not None and shared:
        names = ", ".join(f"`{name}.*`" for name in sorted(shared))
        intro = (f"{intro} " if intro else "") + (
            f"It takes every key of [{base.title.lower()}](#{_anchor(base)}) "
            f"({names}) with the same defaults, plus the keys below."
        )
    if intro:
        parts.append(intro)
    leaves, sections = _sections(job.settings)
    if leaves:
        rows = [row for row in describe(job.settings) if row[0] in leaves]
        parts.append(_table(job.settings, rows, "", _unhashed(job.settings)))
    for name in sections:
        if name in shared:
            continue
        parts.append(f"### `{name}.*`")
        section_cls = field_types(job.settings)[name]
        parts.append(_table(section_cls, describe(section_cls), f"{name}.",
                            _unhashed(job.settings)))
    return "\n\n".join(parts)


def _anchor(job: JobReference) -> str:
    """The id MkDocs' table of contents gives the job's heading."""
    text = f"{job.title}: {job.script}".lower()
    slug = "".join(c if c.isalnum() or c in " -_" else "" for c in text)
    return "-".join(slug.split())


def reference_markdown(jobs: Sequence[JobReference] | None = None) -> str:
    """The whole configuration reference page as Markdown: one section per job."""
    jobs = default_jobs() if jobs is None else tuple(jobs)
    head = (
        "# Configuration reference\n\n"
        "Every setting of every job that takes `--config FILE.yaml` and `--set key=value`, "
        "generated from the settings classes the jobs' `--help` reads. A config file nests "
        "the keys by section (`train:` then `epochs: 30`); `--set train.epochs=30` names "
        "them dotted. Defaults are written as `--help` prints them (JSON: `null`, `true`, "
        "lists in brackets); a setting whose type lists choices takes only those values."
    )
    body = [job_markdown(job, jobs[:i]) for i, job in enumerate(jobs)]
    return "\n\n".join([head, *body]) + "\n"
