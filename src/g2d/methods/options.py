"""The options of the training methods: one dataclass per params.yaml section a method reads.

They live apart from the methods' torch code so that validating params never imports torch: the
method registry (g2d.methods.METHODS) holds each method's options class and only the import path of
its implementation, which declares the same class as `Options`. SMPParams is the `smp` section,
read by every SMP method (g2d, joint_smp, umt_smp) and by `g2d check`'s warnings.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from g2d.config.schema import require


@dataclass(frozen=True)
class SMPParams:
    """The choices the paper leaves open for Sequential Modality Prioritization, and which parameters of
    a suppressed encoder kappa reaches: `all` (the paper's Eq. 8) or `conv` (the reference code: 4-D
    conv weights only, so normalisation layers and biases keep training)."""

    ranking: Literal["batch", "global"] = "batch"
    suppression: Literal["zero_grad", "freeze", "partial"] = "zero_grad"
    gate: Literal["all", "conv"] = "all"


@dataclass(frozen=True)
class OGMGEParams:
    """OGM-GE (Peng et al., CVPR 2022): alpha 0.1 and the modulation window follow the official scripts'
    example (`--modulation_starts 0 --modulation_ends 50 --alpha 0.1`; their README recommends 0.8 on
    CREMA-D, 0.1 on VGGSound: set it per dataset in `datasets.<name>.student`). The official window is
    0-based and inclusive, `0 <= epoch <= 50`: 51 epochs. g2d's epochs are 1-based and inclusive, so
    the same 51 epochs are start 1, end 51. ge adds the Gaussian-noise enhancement."""

    alpha: float = 0.1
    start: int = 1
    end: int = 51
    ge: bool = True

    def validate(self, where: str) -> None:
        require(self.alpha >= 0, f"{where}.alpha", "must be non-negative")
        require(self.start >= 1, f"{where}.start", "must be an epoch >= 1 (epochs are 1-based)")
        require(self.end >= self.start, f"{where}.end", f"must be >= start ({self.start})")


@dataclass(frozen=True)
class UMTParams:
    """UMT (Du et al.): weight of the feature-distillation term; 1.0 = G2D's alpha, for equal terms."""

    weight: float = 1.0

    def validate(self, where: str) -> None:
        require(self.weight >= 0, f"{where}.weight", "must be non-negative")


@dataclass(frozen=True)
class MLAParams:
    """MLA (Zhang et al., CVPR 2024): how unimodal outputs of the shared head are mixed at inference
    (entropy: the paper's test-time uncertainty-based fusion; fixed: equal weights)."""

    inference: Literal["entropy", "fixed"] = "entropy"


@dataclass(frozen=True)
class MMParetoParams:
    """MMPareto (Wei & Hu, ICML 2024): gamma 1.5, the paper's scale of the combined gradient; rescale:
    tensor (the official code: per parameter tensor, scaled up to |g_mm + g_uni| when smaller, never
    down) or encoder (the whole encoder's gradient scaled up or down to that norm)."""

    gamma: float = 1.5
    rescale: Literal["tensor", "encoder"] = "tensor"

    def validate(self, where: str) -> None:
        require(self.gamma > 0, f"{where}.gamma", "must be positive")


@dataclass(frozen=True)
class AGMParams:
    """AGM (Li et al., ICCV 2023): alpha, the strength of the modulation (tuned per dataset in the
    paper; 0.1 is our default, not a published value)."""

    alpha: float = 0.1

    def validate(self, where: str) -> None:
        require(self.alpha >= 0, f"{where}.alpha", "must be non-negative")


@dataclass(frozen=True)
class DLMGParams:
    """DLMG (Yang, Wan, Jiang and Xu, NeurIPS 2024): the weight a1(e) of the classification loss against
    the alignment loss, piecewise-linear through the anchors (`epochs`, `a1`): the values of the official
    code's schedule at its epochs 0, 100 and 199 (of 200). stretch: map our 1-based epochs 1..E onto the
    anchors' span (0..199), so a shorter run sees the whole schedule; false: epoch e is the code's e - 1."""

    epochs: tuple[int, ...] = (0, 100, 199)
    a1: tuple[float, ...] = (0.205, 0.539, 0.916)
    stretch: bool = True

    def validate(self, where: str) -> None:
        require(len(self.epochs) >= 1, f"{where}.epochs", "needs at least one anchor epoch")
        require(
            len(self.a1) == len(self.epochs), f"{where}.a1", f"needs one value per anchor epoch ({len(self.epochs)})"
        )
        require(
            all(b > a for a, b in zip(self.epochs, self.epochs[1:])) and self.epochs[0] >= 0,
            f"{where}.epochs",
            "must be increasing epochs >= 0",
        )
        require(all(0 <= a <= 1 for a in self.a1), f"{where}.a1", "must lie in [0, 1]")


@dataclass(frozen=True)
class PMRParams:
    """PMR (Fan et al., CVPR 2023): alpha 1.0, the weight of the prototype cross-entropy of the lagging
    modality; mu 0.2, the prototypes' EMA weight on their previous value; the modulation window is the
    official 0-based inclusive 0..100, i.e. our 1-based epochs 1..101 (as for OGM-GE); fraction 0.1 of
    each epoch's training batches estimates the prototypes."""

    alpha: float = 1.0
    mu: float = 0.2
    start: int = 1
    end: int = 101
    fraction: float = 0.1

    def validate(self, where: str) -> None:
        require(self.alpha >= 0, f"{where}.alpha", "must be non-negative")
        require(0 <= self.mu < 1, f"{where}.mu", "must lie in [0, 1)")
        require(self.start >= 1, f"{where}.start", "must be an epoch >= 1 (epochs are 1-based)")
        require(self.end >= self.start, f"{where}.end", f"must be >= start ({self.start})")
        require(0 < self.fraction <= 1, f"{where}.fraction", "must lie in (0, 1]")


@dataclass(frozen=True)
class MSESParams:
    """MSES (Fujimori et al., ACPR 2019): each modality stops training (learning rate 0, for good) after
    `patience` epochs without improving its validation `monitor` (loss: its head's validation task loss,
    lower is better; acc: its validation accuracy); restore: also reload the modality's best weights
    when it stops. patience 5 and restore false are our defaults, not published values."""

    patience: int = 5
    monitor: Literal["loss", "acc"] = "loss"
    restore: bool = False

    def validate(self, where: str) -> None:
        require(self.patience >= 1, f"{where}.patience", "must be >= 1 epoch")


@dataclass(frozen=True)
class MSLRParams:
    """MSLR (Yao and Mihalcea, Findings of ACL 2022): `lr`, each modality's own learning rate (from a
    unimodal search; a modality not named gets params' `lr`); strategy keep (those rates throughout)
    or dynamic (every `window` epochs, lr_m <- lr_m * acc_m(t) / mean of its last `window` validation
    accuracies, the current one included)."""

    lr: dict[str, float] = field(default_factory=dict)
    strategy: Literal["keep", "dynamic"] = "keep"
    window: int = 5

    def validate(self, where: str) -> None:
        for m, value in self.lr.items():
            require(value > 0, f"{where}.lr.{m}", "must be positive")
        require(self.window >= 1, f"{where}.window", "must be >= 1 epoch")


@dataclass(frozen=True)
class ReconBoostParams:
    """ReconBoost (Hua et al., ICML 2024), the official CREMA-D defaults: beta 1.0, the initial value of
    the learnable ensemble scale; w1 5 and w2 1, the boosting loss's weights; 4 epochs per modality stage
    and 4 of global rectification after each; alpha 0.5, the memory-consolidation weight. (The official
    lr 0.01 is params' `lr` default.)"""

    beta: float = 1.0
    w1: float = 5.0
    w2: float = 1.0
    epochs_per_stage: int = 4
    correct_epochs: int = 4
    alpha: float = 0.5

    def validate(self, where: str) -> None:
        require(self.beta > 0, f"{where}.beta", "must be positive")
        require(self.w1 >= self.w2 >= 0, f"{where}.w1", "needs w1 >= w2 >= 0 (a non-negative sample weight)")
        require(self.epochs_per_stage >= 1, f"{where}.epochs_per_stage", "must be >= 1 epoch")
        require(self.correct_epochs >= 0, f"{where}.correct_epochs", "must be >= 0 epochs")
        require(self.alpha >= 0, f"{where}.alpha", "must be non-negative")
