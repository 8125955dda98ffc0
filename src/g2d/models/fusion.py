"""Fusion modules. Each turns per-modality features into fused logits *and* per-modality logits.

Per-modality logits are what the paper's "Audio"/"Video" rows evaluate; each fusion computes them
the way its structure allows:
  - late:   each modality has its own linear head; fused = mean of the heads' logits.
  - sum:    one head on the sum of features; modality m's logits = W f_m + b / k.
  - concat: one head on the concatenated features; modality m's logits = W[:, slice_m] f_m + b / k.
  - concat_heads (MIS-ME's): one head on the concatenated features for the fused output, and a
            linear head of each modality's own for its output (trained only by a loss that uses
            them, as MIS-ME's does).
  - shared, shared_entropy (MLA's head): one linear head applied to every modality's features;
            modality m's logits = head(f_m); fused = their mean (shared) or, per sample, their mix
            with weights softmax(-entropy) over modalities (shared_entropy: MLA's test-time fusion).
  - film:   FiLM (Perez et al., 2018): one modality's features f_t are modulated,
            h = gamma(c) * f_t + beta(c), by the concatenation c of the other modalities' features.
            `modulated` picks t: `last` (default; for two modalities the first, audio, conditions the
            second, video, as the G2D reference code's FiLM with x_film=True) or `first`.
  - gated:  `symmetric` (default): BiGated (Kiela et al., 2018), each modality gating the others:
            with u_m = W_m f_m, h = sum_m u_m * sigmoid(mean_{j != m} u_j) (for two modalities,
            u_a * s(u_v) + u_v * s(u_a)). `one_way`: the reference code's GatedFusion (x_gate=True),
            the first modality gating the others, h = sigmoid(u_1) * mean_{j > 1} u_j (for two
            modalities, s(u_a) * u_v).
  - cross_attention: each modality's projected feature is a token whose query attends over all
            modality tokens, its own included as in CrossViT (Chen et al., 2021), with a residual;
            the head reads the concatenated tokens.
For sum and concat the per-modality logits add up to the fused logits. FiLM, gated and
cross-attention mix modalities before the head, so no part of the head belongs to one modality:
modality m's logits are the fused output with the other modalities' features set to zero, i.e. the
trained model's own response to m alone. That needs no extra parameters or loss terms (auxiliary
unimodal heads would stay untrained under joint or G2D training) and matches masking-based
mono-modal responses such as AGM's. All fusions take any k >= 2; shared and sum need equal
feature sizes.
Add a fusion by writing a module with this forward signature and naming it in `g2d.models.FUSIONS`;
a fusion with knobs declares `Options`, the dataclass of its params.yaml section.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from g2d.models import fusion_entry
from g2d.models.options import FiLMParams, GatedParams


class LateFusion(nn.Module):
    def __init__(self, dims: Sequence[int], num_outputs: int) -> None:
        super().__init__()
        self.heads = nn.ModuleList(nn.Linear(d, num_outputs) for d in dims)

    def forward(self, feats: Sequence[torch.Tensor]) -> tuple[torch.Tensor, list[torch.Tensor]]:
        per_mod = [head(f) for head, f in zip(self.heads, feats)]
        return torch.stack(per_mod).mean(dim=0), per_mod


class SumFusion(nn.Module):
    def __init__(self, dims: Sequence[int], num_outputs: int) -> None:
        super().__init__()
        if len(set(dims)) != 1:
            raise ValueError(f"sum fusion needs equal feature sizes, got {list(dims)}")
        self.head = nn.Linear(dims[0], num_outputs)

    def forward(self, feats: Sequence[torch.Tensor]) -> tuple[torch.Tensor, list[torch.Tensor]]:
        k = len(feats)
        per_mod = [f @ self.head.weight.T + self.head.bias / k for f in feats]
        return self.head(torch.stack(list(feats)).sum(dim=0)), per_mod


class ConcatFusion(nn.Module):
    def __init__(self, dims: Sequence[int], num_outputs: int) -> None:
        super().__init__()
        self.dims = list(dims)
        self.head = nn.Linear(sum(dims), num_outputs)

    def forward(self, feats: Sequence[torch.Tensor]) -> tuple[torch.Tensor, list[torch.Tensor]]:
        k = len(feats)
        weights = torch.split(self.head.weight, self.dims, dim=1)
        per_mod = [f @ w.T + self.head.bias / k for f, w in zip(feats, weights)]
        return self.head(torch.cat(list(feats), dim=1)), per_mod


class ConcatHeadsFusion(nn.Module):
    """MIS-ME's fusion: fused = head(concatenated features); modality m's output = its own head(f_m)."""

    def __init__(self, dims: Sequence[int], num_outputs: int) -> None:
        super().__init__()
        self.head = nn.Linear(sum(dims), num_outputs)
        self.heads = nn.ModuleList(nn.Linear(d, num_outputs) for d in dims)

    def forward(self, feats: Sequence[torch.Tensor]) -> tuple[torch.Tensor, list[torch.Tensor]]:
        return self.head(torch.cat(list(feats), dim=1)), [head(f) for head, f in zip(self.heads, feats)]


class SharedHeadFusion(nn.Module):
    """One linear head for all modalities (MLA); unimodal outputs mixed equally or by certainty."""

    def __init__(self, dims: Sequence[int], num_outputs: int, weighting: str = "fixed") -> None:
        super().__init__()
        name = "shared" if weighting == "fixed" else f"shared_{weighting}"
        if len(set(dims)) != 1:
            raise ValueError(
                f"fusion {name} applies one head to every modality and needs equal feature sizes, got {list(dims)}"
            )
        if weighting not in ("fixed", "entropy"):
            raise ValueError(f"unknown weighting {weighting!r} of fusion shared; choose fixed or entropy")
        if weighting == "entropy" and num_outputs < 2:
            raise ValueError(
                f"fusion {name} weights modalities by the entropy of class probabilities and "
                f"needs >= 2 outputs, got {num_outputs}; use equal weights (mla.inference: fixed)"
            )
        self.weighting = weighting
        self.head = nn.Linear(dims[0], num_outputs)

    def mix(self, per_mod: Sequence[torch.Tensor]) -> torch.Tensor:
        """Fused logits from unimodal ones: their mean, or weights softmax(-entropy) per sample."""
        stacked = torch.stack(list(per_mod))  # (k, B, C)
        if self.weighting == "fixed":
            return stacked.mean(dim=0)
        logp = torch.log_softmax(stacked, dim=2)
        entropy = -(logp.exp() * logp).sum(dim=2)  # (k, B)
        weights = torch.softmax(-entropy, dim=0).unsqueeze(2)
        return (weights * stacked).sum(dim=0)

    def forward(self, feats: Sequence[torch.Tensor]) -> tuple[torch.Tensor, list[torch.Tensor]]:
        per_mod = [self.head(f) for f in feats]
        return self.mix(per_mod), per_mod


class MixingFusion(nn.Module):
    """A fusion that mixes modalities before its head; per-modality logits zero the others' features."""

    fusion_name = ""

    def __init__(self, dims: Sequence[int]) -> None:
        super().__init__()
        if len(dims) < 2:
            raise ValueError(f"fusion {self.fusion_name} needs k >= 2 modalities, got k={len(dims)}")

    def combine(self, feats: Sequence[torch.Tensor]) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, feats: Sequence[torch.Tensor]) -> tuple[torch.Tensor, list[torch.Tensor]]:
        per_mod = [
            self.combine([f if j == m else torch.zeros_like(f) for j, f in enumerate(feats)]) for m in range(len(feats))
        ]
        return self.combine(feats), per_mod


def _choice(key: str, value: str, allowed: Sequence[str]) -> str:
    """A fusion option's value, checked (params.yaml validates it first; this guards direct use)."""
    if value not in allowed:
        raise ValueError(f"{key}: {value!r} is not allowed; choose one of {', '.join(allowed)}")
    return value


class FiLMFusion(MixingFusion):
    """h = gamma(c) * f_t + beta(c): modality t (`modulated`: the last or the first in the dataset's
    order) conditioned on the concatenation c of the others' features."""

    fusion_name = "film"
    Options = FiLMParams

    def __init__(self, dims: Sequence[int], num_outputs: int, modulated: str = "last") -> None:
        super().__init__(dims)
        self.target = len(dims) - 1 if _choice("film.modulated", modulated, ("last", "first")) == "last" else 0
        self.film = nn.Linear(sum(dims) - dims[self.target], 2 * dims[self.target])
        self.head = nn.Linear(dims[self.target], num_outputs)

    def combine(self, feats: Sequence[torch.Tensor]) -> torch.Tensor:
        condition = torch.cat([f for i, f in enumerate(feats) if i != self.target], dim=1)
        gamma, beta = self.film(condition).chunk(2, dim=1)
        return self.head(gamma * feats[self.target] + beta)


class GatedFusion(MixingFusion):
    """Projections u_m = W_m f_m gated by sigmoids: every modality by the mean of the others
    (`symmetric`, BiGated), or the mean of the others by the first (`one_way`, the reference code)."""

    fusion_name = "gated"
    Options = GatedParams

    def __init__(self, dims: Sequence[int], num_outputs: int, form: str = "symmetric") -> None:
        super().__init__(dims)
        self.form = _choice("gated.form", form, ("symmetric", "one_way"))
        width = max(dims)
        self.proj = nn.ModuleList(nn.Linear(d, width) for d in dims)
        self.head = nn.Linear(width, num_outputs)

    def combine(self, feats: Sequence[torch.Tensor]) -> torch.Tensor:
        u = [p(f) for p, f in zip(self.proj, feats)]
        if self.form == "one_way":
            return self.head(torch.sigmoid(u[0]) * torch.stack(u[1:]).mean(dim=0))
        total, others = torch.stack(u).sum(dim=0), len(u) - 1
        return self.head(torch.stack([um * torch.sigmoid((total - um) / others) for um in u]).sum(dim=0))


class CrossAttentionFusion(MixingFusion):
    fusion_name = "cross_attention"

    def __init__(self, dims: Sequence[int], num_outputs: int) -> None:
        super().__init__(dims)
        width = max(dims)
        self.proj = nn.ModuleList(nn.Linear(d, width) for d in dims)
        self.attention = nn.MultiheadAttention(width, num_heads=1, batch_first=True)
        self.head = nn.Linear(width * len(dims), num_outputs)

    def combine(self, feats: Sequence[torch.Tensor]) -> torch.Tensor:
        tokens = torch.stack([p(f) for p, f in zip(self.proj, feats)], dim=1)  # (B, k, width)
        attended, _ = self.attention(tokens, tokens, tokens, need_weights=False)
        return self.head((tokens + attended).flatten(1))


def build_fusion(name: str, dims: Sequence[int], num_outputs: int, **options: Any) -> nn.Module:
    """Fusion `name` (g2d.models.FUSIONS) for features of sizes `dims`; `options` are its knobs (its
    params.yaml section, for fusions that have one: film, gated)."""
    entry = fusion_entry(name)
    return entry.load()(dims, num_outputs, **entry.fixed, **options)  # type: ignore[no-any-return]
