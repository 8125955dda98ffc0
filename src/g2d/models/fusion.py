"""Fusion modules. Each turns per-modality features into fused logits *and* per-modality logits.

Per-modality logits are what the paper's "Audio"/"Video" rows evaluate; each fusion computes them
the way its structure allows:
  - late:   each modality has its own linear head; fused = mean of the heads' logits.
  - sum:    one head on the sum of features; modality m's logits = W f_m + b / k.
  - concat: one head on the concatenated features; modality m's logits = W[:, slice_m] f_m + b / k.
For sum and concat the per-modality logits add up to the fused logits.
Add a fusion by writing a module with this forward signature and naming it in `FUSIONS`.
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch
from torch import nn


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


FUSIONS: dict[str, Callable[[Sequence[int], int], nn.Module]] = {
    "late": LateFusion,
    "sum": SumFusion,
    "concat": ConcatFusion,
}


def build_fusion(name: str, dims: Sequence[int], num_outputs: int) -> nn.Module:
    if name not in FUSIONS:
        raise KeyError(f"unknown fusion {name!r}; available: {', '.join(sorted(FUSIONS))}")
    return FUSIONS[name](dims, num_outputs)
