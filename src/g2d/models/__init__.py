"""Models: per-modality encoders, fusion modules, unimodal teachers and the multimodal student.

The registries `FUSIONS` and `ENCODERS` are where a fusion or an encoder is named. They import no
torch: an entry holds the options dataclass of the fusion's params.yaml section, if it has knobs
(g2d.models.options; section named after the fusion), and the import path of the implementation,
loaded by `build_fusion` / `build_encoder`. Add a fusion by writing its module (it declares
`Options = <its options class>` if it has knobs) and one line here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from g2d.models.options import FiLMParams, GatedParams
from g2d.registry import Entry, lookup, option_sections, section_name


@dataclass(frozen=True)
class FusionEntry(Entry):
    """A fusion; `fixed` are keyword arguments its class always receives (one class, several fusions)."""

    fixed: Mapping[str, Any] = field(default_factory=dict)


FUSIONS: dict[str, FusionEntry] = {
    "late": FusionEntry("g2d.models.fusion:LateFusion"),
    "sum": FusionEntry("g2d.models.fusion:SumFusion"),
    "concat": FusionEntry("g2d.models.fusion:ConcatFusion"),
    "shared": FusionEntry("g2d.models.fusion:SharedHeadFusion"),
    "shared_entropy": FusionEntry("g2d.models.fusion:SharedHeadFusion", fixed={"weighting": "entropy"}),
    "film": FusionEntry("g2d.models.fusion:FiLMFusion", FiLMParams),
    "gated": FusionEntry("g2d.models.fusion:GatedFusion", GatedParams),
    "cross_attention": FusionEntry("g2d.models.fusion:CrossAttentionFusion"),
}

ENCODERS: dict[str, Entry] = {
    "small_cnn": Entry("g2d.models.encoders:SmallCNN"),
    "resnet18": Entry("g2d.models.encoders:ResNet18"),
}


def fusion_entry(name: str) -> FusionEntry:
    """The registry entry of fusion `name` (no import of its implementation)."""
    return lookup(FUSIONS, name, "fusion")  # type: ignore[return-value]


def fusion_section(name: str) -> str | None:
    """The params.yaml section holding fusion `name`'s options, or None if it has no knobs."""
    return section_name(name, fusion_entry(name))


def fusion_sections() -> dict[str, type]:
    """{params.yaml section: options dataclass} of every registered fusion that has knobs."""
    return option_sections(FUSIONS)
