"""Unimodal teachers and the multimodal student, for any number k >= 1 / k >= 2 of modalities."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import torch
from torch import nn

from g2d.models.encoders import build_encoder
from g2d.models.fusion import build_fusion


@dataclass
class StudentOutput:
    """Everything the losses and metrics need from one student forward pass."""

    features: dict[str, torch.Tensor]
    logits: dict[str, torch.Tensor]
    fused: torch.Tensor


class UnimodalModel(nn.Module):
    """A teacher: one encoder and a linear head. Returns (features, logits)."""

    def __init__(self, encoder_name: str, input_shape: tuple[int, ...], num_outputs: int) -> None:
        super().__init__()
        self.encoder, dim = build_encoder(encoder_name, input_shape)
        self.head = nn.Linear(dim, num_outputs)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        feats = self.encoder(x)
        return feats, self.head(feats)


class MultimodalStudent(nn.Module):
    """One encoder per modality, a fusion module; exposes features, per-modality and fused logits."""

    def __init__(self, modalities: Sequence[str], encoder_names: Mapping[str, str],
                 input_shapes: Mapping[str, tuple[int, ...]], fusion: str, num_outputs: int,
                 fusion_options: Mapping[str, Any] | None = None) -> None:
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
        return StudentOutput(features=dict(zip(self.modalities, feats)),
                             logits=dict(zip(self.modalities, per_mod)), fused=fused)

    def encoder_parameters(self, modality: str) -> list[nn.Parameter]:
        """The parameters of `modality`'s encoder: what SMP, OGM-GE and AGM modulate (heads and fusion always train)."""
        return list(self.encoders[modality].parameters())
