"""Typed, strict parsing of nested YAML sections into frozen dataclasses.

Every params section is a dataclass; `parse` checks unknown keys, missing keys and types and
raises `ConfigError` naming the full dotted key and what is allowed. Validation happens once,
when params are loaded; the rest of the code receives typed objects and never re-checks.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Collection, Mapping
from typing import Any, Literal, TypeVar, Union, get_args, get_origin, get_type_hints

from g2d.errors import G2DError

T = TypeVar("T")


class ConfigError(G2DError, ValueError):
    """A params value is wrong; the message names the key and the allowed values."""


def parse(cls: type[T], data: Any, where: str, also: Collection[str] = ()) -> T:
    """Build dataclass `cls` from a mapping, checking every key recursively.

    `where` is the dotted path of this section in params.yaml, used in error messages; `also` are keys
    the caller parses itself (taken out of `data`), listed with the allowed keys when one is unknown.
    """
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where or 'params'}: expected a mapping of keys, got {_show(data)}")
    fields = {
        f.name: f
        for f in dataclasses.fields(cls)  # type: ignore[arg-type]
        if not f.metadata.get("internal")
    }
    unknown = sorted(set(data) - set(fields))
    if unknown:
        allowed = ", ".join(sorted({*fields, *also}))
        raise ConfigError(f"{_join(where, unknown[0])}: unknown key; allowed keys here: {allowed}")
    hints = get_type_hints(cls)
    values: dict[str, Any] = {}
    for name, f in fields.items():
        key = _join(where, name)
        if name in data:
            values[name] = coerce(hints[name], data[name], key)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:  # type: ignore[misc]
            raise ConfigError(f"{key}: missing; this key is required")
    obj = cls(**values)
    check = getattr(obj, "validate", None)
    if callable(check):
        check(where)
    return obj


def coerce(tp: Any, value: Any, key: str) -> Any:
    """Check `value` against type annotation `tp`, converting YAML ints to floats where asked."""
    origin = get_origin(tp)
    if tp is Any:
        return value
    if origin is Literal:
        allowed = get_args(tp)
        if value not in allowed:
            raise ConfigError(f"{key}: {value!r} is not allowed; choose one of {', '.join(map(str, allowed))}")
        return value
    if origin in (Union, types.UnionType):
        args = get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return coerce(arg, value, key)
            except ConfigError as exc:
                errors.append(str(exc))
        if len(errors) == 1:
            raise ConfigError(errors[0])
        options = " or ".join(_describe(arg) for arg in args if arg is not type(None))
        raise ConfigError(f"{key}: {_show(value)} is not allowed; expected {options}")
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return parse(tp, value, key)
    if origin in (list, tuple, typing.Sequence) or tp in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: expected a list, got {_show(value)}")
        args = get_args(tp)
        item = args[0] if args else Any
        return tuple(coerce(item, v, f"{key}[{i}]") for i, v in enumerate(value))
    if origin in (dict, typing.Mapping) or tp is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(f"{key}: expected a mapping, got {_show(value)}")
        args = get_args(tp)
        kt, vt = args if args else (Any, Any)
        return {coerce(kt, k, key): coerce(vt, v, _join(key, str(k))) for k, v in value.items()}
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: expected true or false, got {_show(value)}")
        return value
    if tp is int:
        if isinstance(value, str) and value.strip().lstrip("+-").isdigit():  # snakemake --config seeds=[0]
            return int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key}: expected an integer, got {_show(value)}")
        return value
    if tp is float:
        number: float | None = None
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            number = float(value)
        elif isinstance(value, str):
            try:
                number = float(value)
            except ValueError:
                pass
        if number is None:
            raise ConfigError(f"{key}: expected a number, got {_show(value)}")
        if not math.isfinite(number):
            raise ConfigError(f"{key}: {value!r} is not a finite number; give a finite value")
        return number
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key}: expected a string, got {_show(value)}")
        return value
    raise TypeError(f"unsupported annotation {tp!r} for {key}")


def require(condition: bool, key: str, message: str) -> None:
    """Raise a ConfigError for `key` unless `condition` holds (used by sections' validate())."""
    if not condition:
        raise ConfigError(f"{key}: {message}")


def _join(where: str, name: str) -> str:
    return f"{where}.{name}" if where else name


def _describe(tp: Any) -> str:
    """A type annotation in words, for messages: one of 'all', a list, a mapping, a number..."""
    origin = get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in get_args(tp))
    if origin in (list, tuple, typing.Sequence) or tp in (list, tuple):
        return "a list"
    if origin in (dict, typing.Mapping) or tp is dict or (isinstance(tp, type) and dataclasses.is_dataclass(tp)):
        return "a mapping"
    return {bool: "true or false", int: "an integer", float: "a number", str: "a string"}.get(tp, str(tp))


def _show(value: Any) -> str:
    return f"{value!r} ({type(value).__name__})"
