"""Unimodal teachers and the multimodal student, for any number k >= 1 / k >= 2 of modalities."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import torch
from torch import nn

from g2d.models import EncoderSpec
from g2d.models.encoders import build_encoder
from g2d.models.fusion import build_fusion


@dataclass
class StudentOutput:
    """Everything the losses and metrics need from one student forward pass."""

    features: dict[str, torch.Tensor]
    logits: dict[str, torch.Tensor]
    fused: torch.Tensor


INITS = ("reference", "torch")

M = TypeVar("M", bound=nn.Module)


def initialise(model: M, scheme: str) -> M:
    """Set a new model's weights by `scheme` (params.yaml `init`), in place; returns the model.

    `reference`: the reference code's initialisation (applied to its teachers and students alike):
    Kaiming-normal conv weights (fan_out, ReLU), Xavier-normal linear weights with zero bias, BatchNorm
    weight 1 and bias 0. It matters under late fusion: PyTorch's default gives every head a random
    bias and small weights, and the heads then drift into per-class offsets that cancel in the fused
    output but make each branch a poor classifier on its own (see g2d.training.probe).
    `torch`: PyTorch's default initialisation of each layer (left as built).
    """
    if scheme == "torch":
        return model
    if scheme != "reference":
        raise ValueError(f"unknown init {scheme!r}; choose one of {', '.join(INITS)}")
    loaded = {id(m) for owner in model.modules() if getattr(owner, "pretrained", False) for m in owner.modules()}
    for module in model.modules():
        if id(module) in loaded:  # weights loaded from a file (an encoder's `weights` option)
            continue
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(module, nn.Linear):
            nn.init.xavier_normal_(module.weight)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
    return model


class UnimodalModel(nn.Module):
    """A teacher: one encoder and a linear head. Returns (features, logits)."""

    def __init__(self, encoder_name: EncoderSpec, input_shape: tuple[int, ...], num_outputs: int) -> None:
        super().__init__()
        self.encoder, dim = build_encoder(encoder_name, input_shape)
        self.head = nn.Linear(dim, num_outputs)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        feats = self.encoder(x)
        return feats, self.head(feats)


class MultimodalStudent(nn.Module):
    """One encoder per modality, a fusion module; exposes features, per-modality and fused logits."""

    def __init__(
        self,
        modalities: Sequence[str],
        encoder_names: Mapping[str, EncoderSpec],
        input_shapes: Mapping[str, tuple[int, ...]],
        fusion: str,
        num_outputs: int,
        fusion_options: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        if len(modalities) < 2:
            raise ValueError(f"a multimodal student needs at least 2 modalities, got {list(modalities)}")
        self.modalities = list(modalities)
        dims = []
        encoders = {}
        for m in self.modalities:
            encoders[m], dim = build_encoder(encoder_names[m], input_shapes[m])
            dims.append(dim)
        self.encoders = nn.ModuleDict(encoders)
        self.fusion = build_fusion(fusion, dims, num_outputs, **(fusion_options or {}))

    def forward(self, inputs: Mapping[str, torch.Tensor]) -> StudentOutput:
        feats = [self.encoders[m](inputs[m]) for m in self.modalities]
        fused, per_mod = self.fusion(feats)
        return StudentOutput(
            features=dict(zip(self.modalities, feats)), logits=dict(zip(self.modalities, per_mod)), fused=fused
        )

    def encoder_parameters(self, modality: str) -> list[nn.Parameter]:
        """The parameters of `modality`'s encoder: what SMP, OGM-GE and AGM modulate (heads and fusion always train)."""
        return list(self.encoders[modality].parameters())
