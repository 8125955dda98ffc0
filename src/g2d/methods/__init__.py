"""Training methods for the multimodal student, selectable by name in params.yaml (`methods`).

Add a method by subclassing `g2d.methods.base.Method` in its own module and naming it here; its
knobs go in a params.yaml section named by the class's `section` (see g2d.config.params).
"""

from __future__ import annotations

from g2d.methods.agm import AGM
from g2d.methods.base import Method
from g2d.methods.g2d import G2D
from g2d.methods.mla import MLA
from g2d.methods.mmpareto import MMPareto
from g2d.methods.ogm_ge import OGMGE
from g2d.methods.smp import SMPGating
from g2d.methods.umt import UMT, UMTSMP

METHODS: dict[str, type[Method]] = {
    "joint": Method,
    "g2d": G2D,
    "joint_smp": SMPGating,
    "umt": UMT,
    "umt_smp": UMTSMP,
    "ogm_ge": OGMGE,
    "agm": AGM,
    "mmpareto": MMPareto,
    "mla": MLA,
}


def get_method(name: str) -> type[Method]:
    if name not in METHODS:
        raise KeyError(f"unknown method {name!r}; available: {', '.join(METHODS)}")
    return METHODS[name]
