"""The generated configuration reference lists every setting of every job with its default."""

from __future__ import annotations

import typing
from dataclasses import dataclass
from typing import Literal

import pytest

from pipeline.config import describe, field_types, section, setting
from pipeline.config_reference import (
    JobReference,
    default_jobs,
    reference_markdown,
    value_text,
)
from pipeline.data.settings import IngestSettings
from pipeline.ensembles.settings import EnsembleJobSettings
from pipeline.experiment.settings import PruneJobSettings
from pipeline.transfer.settings import TransferJobSettings

JOB_CLASSES = (IngestSettings, PruneJobSettings, TransferJobSettings, EnsembleJobSettings)


@pytest.fixture(scope="module")
def page() -> str:
    return reference_markdown()


def rows_by_key(markdown: str) -> dict[str, list[list[str]]]:
    """Table rows of ``markdown`` keyed by their first cell's key (code span stripped)."""
    rows: dict[str, list[list[str]]] = {}
    for line in markdown.splitlines():
        if not line.startswith("| `"):
            continue
        cells = [c.strip() for c in line.strip("|").split(" | ")]
        rows.setdefault(cells[0].strip("`"), []).append(cells)
    return rows


def literal_values(tp: typing.Any) -> list[typing.Any]:
    if typing.get_origin(tp) is Literal:
        return list(typing.get_args(tp))
    return [v for arg in typing.get_args(tp) for v in literal_values(arg)]


def leaf_type(cls: type, key: str) -> typing.Any:
    tp: typing.Any = cls
    for part in key.split("."):
        tp = field_types(tp)[part]
    return tp


def test_the_reference_covers_every_job_class():
    assert {job.settings for job in default_jobs()} == set(JOB_CLASSES)


@pytest.mark.parametrize("cls", JOB_CLASSES, ids=lambda c: c.__name__)
def test_every_key_appears_with_its_default(page, cls):
    rows = rows_by_key(page)
    for key, _help, default in describe(cls):
        assert key in rows, f"{cls.__name__}: {key} is missing from the reference"
        assert any(f"`{value_text(default)}`" == cells[2] for cells in rows[key]), (
            f"{key}: default {value_text(default)} not in {rows[key]}"
        )


@pytest.mark.parametrize("cls", JOB_CLASSES, ids=lambda c: c.__name__)
def test_literal_choices_appear(page, cls):
    rows = rows_by_key(page)
    checked = 0
    for key, _help, _default in describe(cls):
        choices = literal_values(leaf_type(cls, key))
        for choice in choices:
            assert any(f"`{value_text(choice)}`" in cells[3] for cells in rows[key]), (
                f"{key}: choice {choice!r} missing"
            )
        checked += bool(choices)
    assert checked, f"{cls.__name__}: no Literal setting was checked"


def test_the_main_jobs_unhashed_keys_are_marked(page):
    rows = rows_by_key(page)
    assert "not hashed" in rows["run.output"][0][4]
    assert "not hashed" not in rows["train.epochs"][0][4]


@dataclass
class _Knobs:
    speed: float = setting(1.5, "how fast | in both directions <fast>")
    flavour: Literal["sweet", "sour"] | None = setting(None, "taste, or none")
    names: list[str] = setting(["a", "b"], "some names")


@dataclass
class _MadeUpSettings:
    knobs: _Knobs = section(_Knobs)
    top: int = setting(7, "a key without a section")


def test_a_made_up_settings_class_renders_key_type_default_and_description():
    page = reference_markdown(
        [JobReference("Made up", "jobs/made_up.py", _MadeUpSettings, "An invented job.")]
    )
    assert "## Made up: `jobs/made_up.py`" in page
    assert "### `knobs.*`" in page
    rows = rows_by_key(page)
    assert rows["top"] == [["`top`", "int", "`7`", "", "a key without a section"]]
    assert rows["knobs.speed"] == [[
        "`knobs.speed`", "float", "`1.5`", "",
        "how fast \\| in both directions &lt;fast&gt;",
    ]]
    flavour = rows["knobs.flavour"][0]
    assert flavour[1] == "str \\| None"
    assert flavour[2] == "`null`"
    assert flavour[3] == '`"sweet"`, `"sour"`'
    assert rows["knobs.names"][0][1:3] == ["list[str]", '`["a", "b"]`']


def test_a_job_extending_another_lists_only_its_own_sections():
    @dataclass
    class Extended(_MadeUpSettings):
        extra: _Knobs = section(_Knobs)

    jobs = [JobReference("Base", "jobs/base.py", _MadeUpSettings),
            JobReference("Extended", "jobs/extended.py", Extended)]
    page = reference_markdown(jobs)
    extended = page[page.index("## Extended"):]
    assert "### `extra.*`" in extended
    assert "### `knobs.*`" not in extended
    assert "[base](#base-jobsbasepy)" in extended
