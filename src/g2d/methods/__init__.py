"""Training methods for the multimodal student, selectable by name in params.yaml (`methods`).

Add a method by subclassing `g2d.methods.base.Method` in its own module and naming it here.
"""

from __future__ import annotations

from g2d.methods.base import Method
from g2d.methods.g2d import G2D

METHODS: dict[str, type[Method]] = {
    "joint": Method,
    "g2d": G2D,
}


def get_method(name: str) -> type[Method]:
    if name not in METHODS:
        raise KeyError(f"unknown method {name!r}; available: {', '.join(METHODS)}")
    return METHODS[name]
