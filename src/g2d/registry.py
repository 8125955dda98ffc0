"""Named implementations that are imported only when used.

Validating params (`g2d check`, Snakemake's parse step) needs every method's and fusion's name and
the dataclass of its params.yaml section, but not the torch code behind them: a registry entry holds
the options dataclass itself and only the import path of the implementation. Registries: methods
(g2d.methods.METHODS), fusions and encoders (g2d.models.FUSIONS, ENCODERS), dataset sources
(g2d.datasets.SOURCES).
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Entry:
    """One implementation: `impl` is "package.module:Name"; `options`, if any, the dataclass of its
    params.yaml section, named `section` (default: the entry's own name in its registry)."""

    impl: str
    options: type | None = None
    section: str | None = None

    def load(self) -> Any:
        """Import the implementation; its `Options`, where it declares some, must be this entry's."""
        module, _, name = self.impl.partition(":")
        try:
            obj = getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError) as exc:
            raise ImportError(f"registry entry {self.impl!r}: cannot import it ({exc})") from exc
        declared = getattr(obj, "Options", None)
        if declared is not self.options:
            raise TypeError(
                f"registry entry {self.impl!r}: the registry gives options {_name(self.options)}, the "
                f"implementation declares Options = {_name(declared)}; make them the same class"
            )
        return obj


def section_name(name: str, entry: Entry) -> str | None:
    """The params.yaml section holding entry `name`'s options, or None if it has none."""
    return (entry.section or name) if entry.options is not None else None


def option_sections(registry: Mapping[str, Entry]) -> dict[str, type]:
    """{section: options dataclass} of a registry's entries, each section once (entries may share one)."""
    out: dict[str, type] = {}
    for name, entry in registry.items():
        section = section_name(name, entry)
        if section is None:
            continue
        if out.setdefault(section, entry.options) is not entry.options:  # type: ignore[arg-type]
            raise TypeError(
                f"registry: section {section!r} is given two options classes, "
                f"{_name(out[section])} and {_name(entry.options)}"
            )
    return out


def lookup(registry: Mapping[str, Entry], name: str, kind: str) -> Entry:
    """Entry `name`, or a KeyError listing the names there are."""
    if name not in registry:
        raise KeyError(f"unknown {kind} {name!r}; available: {', '.join(registry)}")
    return registry[name]


def _name(cls: type | None) -> str:
    return "none" if cls is None else f"{cls.__module__}.{cls.__qualname__}"
