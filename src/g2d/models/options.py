"""The options of the fusions that have knobs: one dataclass per params.yaml section (film, gated).

Apart from the fusions' torch code so that validating params never imports torch; the fusion
registry (g2d.models.FUSIONS) names each fusion, its options class and its implementation's import
path, and the implementation declares the same class as `Options`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


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
