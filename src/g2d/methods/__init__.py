"""Training methods for the multimodal student, selectable by name in params.yaml (`methods`).

The registry `METHODS` is where a method is named. It imports no torch: each entry holds the
method's options dataclass (g2d.methods.options; its params.yaml section, `section`, defaults to
the method's name) and what the pipeline must know before running it, and only the import path of
the implementation, loaded by `get_method`. Add a method by writing one module with a subclass of
`g2d.methods.base.Method` (declaring `Options = <its options class>` if it has knobs) and one line
here; validation, the student stage and its resume fingerprint then read its section.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from g2d.methods.options import (
    AGMParams,
    DLMGParams,
    MLAParams,
    MMParetoParams,
    MSESParams,
    MSLRParams,
    OGMGEParams,
    PMRParams,
    ReconBoostParams,
    UMTParams,
)
from g2d.registry import Entry, lookup, option_sections, section_name

if TYPE_CHECKING:
    from g2d.methods.base import Method


@dataclass(frozen=True)
class MethodEntry(Entry):
    """A method: `teachers` if it reads the teachers' outputs (cached or online), `teacher_weights` if it
    starts from the teachers' trained weights (the student stage loads them), `scales_gradients` if
    its rule multiplies encoder gradients by a coefficient, `smp` if it gates encoders by SMP (reads the
    `smp` section); the last two are what `g2d check` warns about under Adam-family optimizers.
    `data_parallel` if it is verified to train the same under several processes as in one
    (g2d.training.distributed: every per-batch statistic it reads is reduced over the global batch).
    `loss_scaling` if every gradient of its step goes through the Precision's backward, so that
    `precision: fp16` (loss scaling) may train it."""

    teachers: bool = False
    teacher_weights: bool = False
    scales_gradients: bool = False
    smp: bool = False
    data_parallel: bool = False
    loss_scaling: bool = True


METHODS: dict[str, MethodEntry] = {
    "joint": MethodEntry("g2d.methods.base:Method", data_parallel=True),
    "g2d": MethodEntry("g2d.methods.g2d:G2D", teachers=True, smp=True, data_parallel=True),
    "joint_smp": MethodEntry("g2d.methods.smp:SMPGating", teachers=True, smp=True, data_parallel=True),
    "umt": MethodEntry("g2d.methods.umt:UMT", UMTParams, teachers=True, data_parallel=True),
    "umt_smp": MethodEntry(
        "g2d.methods.umt:UMTSMP", UMTParams, section="umt", teachers=True, smp=True, data_parallel=True
    ),
    "ogm_ge": MethodEntry("g2d.methods.ogm_ge:OGMGE", OGMGEParams, scales_gradients=True, data_parallel=True),
    "agm": MethodEntry("g2d.methods.agm:AGM", AGMParams, scales_gradients=True),
    "mmpareto": MethodEntry("g2d.methods.mmpareto:MMPareto", MMParetoParams, loss_scaling=False),
    "mla": MethodEntry("g2d.methods.mla:MLA", MLAParams),
    "dlmg": MethodEntry("g2d.methods.dlmg:DLMG", DLMGParams),
    "pmr": MethodEntry("g2d.methods.pmr:PMR", PMRParams),
    "mses": MethodEntry("g2d.methods.mses:MSES", MSESParams),
    "mslr": MethodEntry("g2d.methods.mslr:MSLR", MSLRParams),
    "reconboost": MethodEntry("g2d.methods.reconboost:ReconBoost", ReconBoostParams),
    "ume": MethodEntry("g2d.methods.ume:UME", teacher_weights=True),
    "misme": MethodEntry("g2d.methods.misme:MISME"),
}


def method_entry(name: str) -> MethodEntry:
    """The registry entry of method `name` (no import of its implementation)."""
    return lookup(METHODS, name, "method")  # type: ignore[return-value]


def method_section(name: str) -> str | None:
    """The params.yaml section holding method `name`'s options, or None if it has no knobs."""
    return section_name(name, method_entry(name))


def method_sections() -> dict[str, type]:
    """{params.yaml section: options dataclass} of every registered method that has knobs."""
    return option_sections(METHODS)


def get_method(name: str) -> type[Method]:
    """The class of method `name` (imports its module, and torch)."""
    return method_entry(name).load()  # type: ignore[no-any-return]
