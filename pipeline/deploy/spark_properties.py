"""Cluster Spark properties kept in YAML, rendered for the command that submits a job.

``conf/dataproc.yaml`` and ``conf/emr.yaml`` hold one top-level mapping, ``spark_properties``,
of Spark property names to scalar values. :func:`render` turns it into

- ``submit``: ``--conf k=v`` flags for ``spark-submit`` (shell-quoted where needed);
- ``gcloud``: one ``--properties=k=v,k=v`` argument for ``gcloud dataproc jobs submit``;
- ``emr``: a JSON list of ``spark-submit`` arguments for the ``Args`` of an EMR step.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from pipeline.config import ConfigError, parse_override

SECTION = "spark_properties"
FORMATS = ("submit", "gcloud", "emr")

_KEY = re.compile(r"^spark\.[A-Za-z0-9_.\-]+$")
# gcloud splits --properties on commas. When a value holds one, the argument must start
# with ``^D^`` to name another delimiter D (`gcloud topic escaping`); the first of these
# that occurs in no key or value is used.
_GCLOUD_DELIMITERS = ("#", "@", "|", "~", "!", "%", ";", ":")


class PropertiesError(ConfigError):
    """A properties file or override is missing or malformed; the message says which."""


def _text(where: str, key: str, value: Any) -> str:
    """A scalar YAML value as Spark expects it (``true``, not ``True``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, str):
        if "\n" in value or "\r" in value:
            raise PropertiesError(f"{where}: {key}: value must be on one line")
        return value
    if value is None:
        raise PropertiesError(f"{where}: {key}: has no value")
    raise PropertiesError(
        f"{where}: {key}: value must be a string, number or boolean, "
        f"got {type(value).__name__} {value!r}"
    )


def _checked(where: str, key: Any, value: Any) -> tuple[str, str]:
    if not isinstance(key, str) or not _KEY.match(key):
        raise PropertiesError(
            f"{where}: {key!r} is not a Spark property name (spark.<letters, digits, . _ ->)"
        )
    return key, _text(where, key, value)


def load_properties(path: str | Path) -> dict[str, str]:
    """Read ``spark_properties`` from a YAML file; values come back as Spark strings."""
    path = Path(path)
    if not path.is_file():
        raise PropertiesError(f"properties file {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise PropertiesError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict) or SECTION not in data:
        raise PropertiesError(f"{path}: expected a top-level '{SECTION}:' mapping")
    extra = sorted(str(k) for k in data if k != SECTION)
    if extra:
        raise PropertiesError(f"{path}: unexpected top-level keys {extra}; only '{SECTION}'")
    section = data[SECTION]
    if not isinstance(section, dict) or not section:
        raise PropertiesError(f"{path}: '{SECTION}' must be a non-empty mapping of key: value")
    return dict(_checked(str(path), k, v) for k, v in section.items())


def apply_overrides(props: Mapping[str, str], overrides: Iterable[str]) -> dict[str, str]:
    """``props`` updated by ``key=value`` strings (values parsed as YAML scalars)."""
    result = dict(props)
    for text in overrides:
        try:
            key, value = parse_override(text)
        except ConfigError as exc:
            raise PropertiesError(str(exc)) from exc
        key, result[key] = _checked("--set", key, value)
    return result


def without_gpu(props: Mapping[str, str]) -> dict[str, str]:
    """``props`` minus the ``spark.{driver,executor,task}.resource.gpu.*`` keys (CPU clusters)."""
    return {k: v for k, v in props.items() if ".resource.gpu." not in k}


def submit_args(props: Mapping[str, str]) -> list[str]:
    """``["--conf", "k=v", ...]`` in file order."""
    args: list[str] = []
    for key, value in props.items():
        args += ["--conf", f"{key}={value}"]
    return args


def format_submit(props: Mapping[str, str]) -> str:
    return shlex.join(submit_args(props))


def format_gcloud(props: Mapping[str, str]) -> str:
    pairs = [f"{key}={value}" for key, value in props.items()]
    if not any("," in pair for pair in pairs):
        return "--properties=" + ",".join(pairs)
    for delim in _GCLOUD_DELIMITERS:
        if not any(delim in pair for pair in pairs):
            return f"--properties=^{delim}^" + delim.join(pairs)
    raise PropertiesError(
        f"every gcloud delimiter {''.join(_GCLOUD_DELIMITERS)!r} occurs in some property; "
        "use --format submit instead"
    )


def format_emr(props: Mapping[str, str]) -> str:
    return json.dumps(submit_args(props))


_FORMATTERS: dict[str, Callable[[Mapping[str, str]], str]] = {
    "submit": format_submit,
    "gcloud": format_gcloud,
    "emr": format_emr,
}


def render(
    path: str | Path,
    fmt: str = "submit",
    *,
    gpu: bool = True,
    overrides: Iterable[str] = (),
) -> str:
    """Load ``path``, apply ``overrides`` (and drop GPU keys unless ``gpu``), then format."""
    if fmt not in _FORMATTERS:
        raise PropertiesError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    props = apply_overrides(load_properties(path), overrides)
    if not gpu:
        props = without_gpu(props)
    return _FORMATTERS[fmt](props)
