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

from g2d.config.schema import ConfigError, parse
from g2d.models.options import (
    FiLMParams,
    GatedParams,
    MobileNetV2Params,
    SequenceTransformerParams,
    TabularMLPParams,
    TextTransformerParams,
)
from g2d.registry import Entry, lookup, option_sections, section_name

# A dataset's encoder for one modality (params.yaml `datasets.<name>.encoders.<modality>`): a registered
# name, or a mapping {name: <encoder>, <its options>...}, e.g. {name: mobilenet_v2, width: 0.35}.
EncoderSpec = str | Mapping[str, Any]


@dataclass(frozen=True)
class FusionEntry(Entry):
    """A fusion; `fixed` are keyword arguments its class always receives (one class, several fusions)."""

    fixed: Mapping[str, Any] = field(default_factory=dict)


FUSIONS: dict[str, FusionEntry] = {
    "late": FusionEntry("g2d.models.fusion:LateFusion"),
    "sum": FusionEntry("g2d.models.fusion:SumFusion"),
    "concat": FusionEntry("g2d.models.fusion:ConcatFusion"),
    "concat_heads": FusionEntry("g2d.models.fusion:ConcatHeadsFusion"),
    "shared": FusionEntry("g2d.models.fusion:SharedHeadFusion"),
    "shared_entropy": FusionEntry("g2d.models.fusion:SharedHeadFusion", fixed={"weighting": "entropy"}),
    "film": FusionEntry("g2d.models.fusion:FiLMFusion", FiLMParams),
    "gated": FusionEntry("g2d.models.fusion:GatedFusion", GatedParams),
    "cross_attention": FusionEntry("g2d.models.fusion:CrossAttentionFusion"),
}

ENCODERS: dict[str, Entry] = {
    "small_cnn": Entry("g2d.models.encoders:SmallCNN"),
    "resnet18": Entry("g2d.models.encoders:ResNet18"),
    "mobilenet_v2": Entry("g2d.models.encoders:MobileNetV2", MobileNetV2Params),
    "tabular_mlp": Entry("g2d.models.encoders:TabularMLP", TabularMLPParams),
    "sequence_transformer": Entry("g2d.models.encoders:SequenceTransformer", SequenceTransformerParams),
    "text_transformer": Entry("g2d.models.encoders:TextTransformer", TextTransformerParams),
}
# Encoders that read token ids (their class has `tokens = True`): only for a dataset's token modalities.
TOKEN_ENCODERS: frozenset[str] = frozenset({"text_transformer"})


def encoder_options(spec: EncoderSpec, where: str) -> tuple[str, Any]:
    """(name, options dataclass or None) of an encoder spec, validated; errors name `where`."""
    if isinstance(spec, str):
        name, given = spec, None
    else:
        if "name" not in spec or not isinstance(spec["name"], str):
            raise ConfigError(
                f"{where}.name: missing; an encoder given as a mapping names it, e.g. {{name: mobilenet_v2}}"
            )
        name, given = spec["name"], {k: v for k, v in spec.items() if k != "name"}
    if name not in ENCODERS:
        raise ConfigError(f"{where}: unknown encoder {name!r}; choose from {', '.join(sorted(ENCODERS))}")
    options = ENCODERS[name].options
    if options is None:
        if given:
            raise ConfigError(f"{where}.{sorted(given)[0]}: unknown key; encoder {name} has no options")
        return name, None
    return name, parse(options, given, where, also=("name",))


def fusion_entry(name: str) -> FusionEntry:
    """The registry entry of fusion `name` (no import of its implementation)."""
    return lookup(FUSIONS, name, "fusion")  # type: ignore[return-value]


def fusion_section(name: str) -> str | None:
    """The params.yaml section holding fusion `name`'s options, or None if it has no knobs."""
    return section_name(name, fusion_entry(name))


def fusion_sections() -> dict[str, type]:
    """{params.yaml section: options dataclass} of every registered fusion that has knobs."""
    return option_sections(FUSIONS)


def resolve_encoder(spec: EncoderSpec, modality: str, tokens: Mapping[str, int], where: str = "encoder") -> EncoderSpec:
    """`spec` for `modality` of a dataset whose token modalities have the vocabulary sizes `tokens` (its
    meta's): a token encoder gets the dataset's `vocab_size` unless given one at least as large. Token
    ids and features need different encoders, so a mismatch is an error naming `where`. The resolved
    spec is what a checkpoint stores, so a model is rebuilt from it without the dataset."""
    name, options = encoder_options(spec, where)
    if (name in TOKEN_ENCODERS) != (modality in tokens):
        if modality in tokens:
            raise ConfigError(
                f"{where}: {modality} holds token ids (preprocess.token_modalities), which {name} cannot read; "
                f"use {' or '.join(sorted(TOKEN_ENCODERS))}"
            )
        raise ConfigError(
            f"{where}: {name} reads token ids, but {modality} holds features; list {modality} in the dataset's "
            "preprocess.token_modalities if it holds ids, or choose a feature encoder"
        )
    if name not in TOKEN_ENCODERS:
        return spec
    given = options.vocab_size
    if given is not None and given < tokens[modality]:
        raise ConfigError(
            f"{where}.vocab_size: {given}, but {modality}'s ids reach {tokens[modality] - 1}; "
            f"give at least {tokens[modality]}, or null for the dataset's"
        )
    return {**({"name": spec} if isinstance(spec, str) else spec), "vocab_size": given or tokens[modality]}
