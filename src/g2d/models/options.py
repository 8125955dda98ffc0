"""The options of the fusions that have knobs: one dataclass per params.yaml section (film, gated).

Apart from the fusions' torch code so that validating params never imports torch; the fusion
registry (g2d.models.FUSIONS) names each fusion, its options class and its implementation's import
path, and the implementation declares the same class as `Options`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from g2d.config.schema import require


@dataclass(frozen=True)
class FiLMParams:
    """FiLM fusion: which modality's features are modulated by the others'. last: the last in the
    dataset's order, conditioned on the concatenation of the others (for two modalities audio
    conditions video, as the G2D reference code's FiLM, x_film=True); first: the first (g2d's earlier
    direction)."""

    modulated: Literal["last", "first"] = "last"


@dataclass(frozen=True)
class GatedParams:
    """Gated fusion: symmetric (BiGated, Kiela et al.: every modality gated by the mean of the others)
    or one_way (the G2D reference code's GatedFusion, x_gate=True: sigmoid(W_1 f_1) gates the mean of
    the others' projections; for two modalities sigmoid(W_a f_a) * W_v f_v)."""

    form: Literal["symmetric", "one_way"] = "symmetric"


@dataclass(frozen=True)
class MobileNetV2Params:
    """MobileNetV2 (torchvision; MIS-ME's image encoder): `width` is the width multiplier (1.0 is the
    paper's network, smaller ones are for CPUs), `weights` a local file of pretrained weights (a
    torchvision state dict, or one of its `features` only) loaded into the convolutional body; random
    initialisation when null."""

    width: float = 1.0
    weights: str | None = None

    def validate(self, where: str) -> None:
        require(0 < self.width <= 2, f"{where}.width", f"must be in (0, 2], got {self.width}")


@dataclass(frozen=True)
class TabularMLPParams:
    """MIS-ME's fully connected network for the weather table: Linear, BatchNorm, ReLU and dropout per
    hidden layer (8 -> 256 -> 128 -> 64 -> 32 -> 16 in MIS-ME; its dropout rate is not published)."""

    hidden: tuple[int, ...] = (256, 128, 64, 32, 16)
    dropout: float = 0.2

    def validate(self, where: str) -> None:
        require(len(self.hidden) > 0, f"{where}.hidden", "give at least one hidden layer width")
        require(all(h > 0 for h in self.hidden), f"{where}.hidden", f"widths must be positive, got {list(self.hidden)}")
        require(0 <= self.dropout < 1, f"{where}.dropout", f"must be in [0, 1), got {self.dropout}")


@dataclass(frozen=True)
class SequenceTransformerParams:
    """A Transformer encoder over (T, D) feature sequences (the paper's choice for UR-Funny and IEMOCAP):
    features projected to `d_model`, learned positions up to `max_len` steps, `layers` encoder layers of
    `heads` heads, and the mean over the steps that are not padding."""

    d_model: int = 64
    heads: int = 4
    layers: int = 2
    dropout: float = 0.1
    max_len: int = 512

    def validate(self, where: str) -> None:
        require(self.d_model > 0 and self.layers > 0 and self.max_len > 0, where, "sizes must be positive")
        require(self.heads > 0 and self.d_model % self.heads == 0, f"{where}.heads", "must divide d_model")
        require(0 <= self.dropout < 1, f"{where}.dropout", f"must be in [0, 1), got {self.dropout}")


@dataclass(frozen=True)
class TextTransformerParams:
    """A Transformer encoder over (T,) token ids, 0 = padding (a modality in the arrays source's
    `token_modalities`): an embedding of `vocab_size` ids into `dim`, learned positions up to `max_len`
    tokens, `layers` encoder layers of `heads` heads, and the mean over the tokens that are not padding.
    `vocab_size` null: the dataset's, recorded when it was preprocessed (largest id + 1, or its
    `vocab_size`)."""

    dim: int = 64
    heads: int = 4
    layers: int = 2
    dropout: float = 0.1
    max_len: int = 512
    vocab_size: int | None = None

    def validate(self, where: str) -> None:
        require(self.dim > 0 and self.layers > 0 and self.max_len > 0, where, "sizes must be positive")
        require(self.heads > 0 and self.dim % self.heads == 0, f"{where}.heads", "must divide dim")
        require(0 <= self.dropout < 1, f"{where}.dropout", f"must be in [0, 1), got {self.dropout}")
        require(
            self.vocab_size is None or self.vocab_size >= 2,
            f"{where}.vocab_size",
            "must be at least 2 (id 0 is padding), or null for the dataset's",
        )
