"""Typed configuration: nested dataclasses loaded from YAML with ``--set key=value`` overrides.

Every leaf field carries a one-line description in ``metadata["help"]``. Keys are dotted
paths (``train.epochs``). Unknown keys and values of the wrong type are errors that name
the key. Each section checks its own values in ``__post_init__`` (:func:`require`,
:func:`check_choices`), naming the field; the loader adds the section (``train.epochs``).
The hash of the *non-default* settings names a run directory, so adding a new setting with
a default never moves old runs (the open_lth convention).
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import hashlib
import json
import re
import types
import typing
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml

T = TypeVar("T")


class ConfigError(ValueError):
    """A configuration problem; the message names the offending key."""


def setting(default: Any, help: str) -> Any:  # noqa: A002 - mirrors argparse's name
    """A dataclass field with a default and a one-line description."""
    if isinstance(default, (list, dict)):
        return dataclasses.field(
            default_factory=lambda: type(default)(default), metadata={"help": help}
        )
    return dataclasses.field(default=default, metadata={"help": help})


def section(cls: type) -> Any:
    """A nested dataclass section with its own defaults."""
    return dataclasses.field(default_factory=cls)


def require(condition: bool, key: str, message: str) -> None:
    """Raise ``ConfigError("<key>: <message>")`` unless ``condition``.

    In a section's ``__post_init__`` ``key`` is the field name; :func:`from_dict` adds the
    section's prefix, so a loaded setting is named in full (``train.epochs: ...``).
    """
    if not condition:
        raise ConfigError(f"{key}: {message}")


def _is_choice(tp: Any) -> bool:
    if typing.get_origin(tp) is typing.Literal:
        return True
    return typing.get_origin(tp) in (typing.Union, types.UnionType) and any(
        _is_choice(arg) for arg in typing.get_args(tp)
    )


def check_choices(obj: Any) -> None:
    """Check every ``Literal`` field of dataclass ``obj``, for values set without the loader."""
    hints = field_types(type(obj))
    for f in dataclasses.fields(obj):
        if _is_choice(hints[f.name]):
            _coerce(f.name, getattr(obj, f.name), hints[f.name])


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


_EXPONENT_NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+")


def _coerce(key: str, value: Any, tp: Any) -> Any:
    """Check ``value`` against annotation ``tp``; return it (ints widen to float)."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(key, value, arg)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(f"{key}: expected {_type_name(tp)}, got {value!r}")
    if origin is typing.Literal:
        if value not in args:
            choices = ", ".join(repr(a) for a in args)
            raise ConfigError(f"{key}: must be one of {choices}, got {value!r}")
        return value
    if origin is list:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        (item_tp,) = args or (Any,)
        return [_coerce(f"{key}[{i}]", v, item_tp) for i, v in enumerate(value)]
    if tp is Any:
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: expected true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key}: expected an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, str) and _EXPONENT_NUMBER.fullmatch(value.strip()):
            return float(value)  # YAML 1.1 reads 1e-4 (no dot) as a string
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key}: expected a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key}: expected a string, got {value!r}")
        return value
    raise ConfigError(f"{key}: unsupported setting type {_type_name(tp)}")


@functools.cache
def field_types(cls: type) -> dict[str, Any]:
    """The resolved annotation of every field of dataclass ``cls``, by name."""
    return typing.get_type_hints(cls)



def from_dict(cls: type[T], data: Mapping[str, Any], prefix: str = "") -> T:
    """Build dataclass ``cls`` from a nested mapping, checking keys and types."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"{prefix.rstrip('.') or '<root>'}: expected a mapping, got {data!r}")
    hints = field_types(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(
            f"unknown setting {prefix}{unknown[0]} (known under "
            f"{prefix.rstrip('.') or 'the top level'}: {', '.join(sorted(names))})"
        )
    kwargs = {}
    for name, value in data.items():
        tp = hints[name]
        key = f"{prefix}{name}"
        if dataclasses.is_dataclass(tp):
            kwargs[name] = from_dict(tp, value or {}, prefix=f"{key}.")
        else:
            kwargs[name] = _coerce(key, value, tp)
    try:
        return cls(**kwargs)
    except ConfigError as exc:  # raised by the section's own checks, keyed by field name
        raise ConfigError(f"{prefix}{exc}") from None


def to_dict(config: Any) -> dict[str, Any]:
    """Nested plain-dict form of a config dataclass."""
    return dataclasses.asdict(config)


def flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` → ``{"a.b": 1}``."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, Mapping):
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def _set_dotted(data: dict[str, Any], key: str, value: Any) -> None:
    parts = key.split(".")
    node = data
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"{key}: {part} is a value, not a section")
        node = child
    node[parts[-1]] = value


def parse_override(text: str) -> tuple[str, Any]:
    """``"train.epochs=3"`` → ``("train.epochs", 3)``; values are parsed as YAML."""
    if "=" not in text:
        raise ConfigError(f"--set expects key=value, got {text!r}")
    key, raw = text.split("=", 1)
    key = key.strip()
    if not key:
        raise ConfigError(f"--set expects key=value, got {text!r}")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as exc:
        raise ConfigError(f"{key}: cannot parse value {raw!r}: {exc}") from exc
    return key, value


def load_config(
    cls: type[T], path: str | Path | None = None, overrides: Iterable[str] = (),
    base: Mapping[str, Any] | None = None,
) -> T:
    """Defaults of ``cls``, updated by ``base`` (nested, e.g. another run's settings), then by
    the YAML at ``path``, then by ``key=value`` overrides."""
    data: dict[str, Any] = copy.deepcopy(dict(base)) if base else {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"config file {path} does not exist")
        with path.open() as fh:
            loaded = yaml.safe_load(fh) or {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"config file {path} must hold a mapping of sections")
        for key, value in flatten(loaded).items():
            _set_dotted(data, key, value)
    for text in overrides:
        key, value = parse_override(text)
        _set_dotted(data, key, value)
    return from_dict(cls, data)


def non_default(config: Any) -> dict[str, Any]:
    """Flat dict of the settings whose value differs from the class default."""
    current = flatten(to_dict(config))
    default = flatten(to_dict(type(config)()))
    return {k: v for k, v in sorted(current.items()) if default.get(k, object()) != v}


def settings_hash(config: Any, exclude: Iterable[str] = ()) -> str:
    """Short stable hash of the non-default settings, skipping keys in ``exclude``."""
    skip = set(exclude)
    items = {k: v for k, v in non_default(config).items() if k not in skip}
    blob = json.dumps(items, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:10]


def describe(cls: type, prefix: str = "") -> list[tuple[str, str, Any]]:
    """``(key, help, default)`` for every leaf setting of ``cls``; feeds ``--help``."""
    rows: list[tuple[str, str, Any]] = []
    hints = field_types(cls)
    instance = cls()
    for f in dataclasses.fields(cls):
        key = f"{prefix}{f.name}"
        tp = hints[f.name]
        if dataclasses.is_dataclass(tp):
            rows.extend(describe(tp, f"{key}."))
        else:
            rows.append((key, f.metadata.get("help", ""), getattr(instance, f.name)))
    return rows


def help_text(cls: type) -> str:
    """Settings table for ``--help`` epilogs."""
    rows = describe(cls)
    width = max(len(k) for k, _, _ in rows)
    lines = ["settings (override with --set key=value):"]
    for key, text, default in rows:
        lines.append(f"  {key.ljust(width)}  {text} [default: {json.dumps(default)}]")
    return "\n".join(lines)


def dump_yaml(config: Any) -> str:
    """The full resolved configuration as YAML."""
    return yaml.safe_dump(to_dict(config), sort_keys=False)
