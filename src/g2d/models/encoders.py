"""Per-modality encoders. Each maps one modality's batch to a feature vector (B, D).

Inputs are (B, C, H, W) images/spectrograms or (B, F, C, H, W) frame stacks; frame stacks are
encoded frame by frame and averaged over time (the paper's visual pathway pools over frames).
Tabular encoders (`tabular = True`) take (B, F) rows of features instead, sequence encoders
(`sequence = True`) (B, T, D) feature sequences, token encoders (`tokens = True`) (B, T) int64 ids.
Add an encoder by writing a builder and naming it in `g2d.models.ENCODERS`; one with knobs declares
`Options`, the dataclass a dataset's encoder mapping is parsed into (g2d.models.encoder_options).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from g2d.models import ENCODERS, EncoderSpec, encoder_options
from g2d.models.options import MobileNetV2Params, SequenceTransformerParams, TabularMLPParams, TextTransformerParams
from g2d.registry import lookup


class FramePooling(nn.Module):
    """Apply a 2-D encoder to every frame of a (B, F, C, H, W) input and average over frames."""

    def __init__(self, backbone: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 4:
            return self.backbone(x)
        b, f = x.shape[:2]
        feats = self.backbone(x.reshape(b * f, *x.shape[2:]))
        return feats.reshape(b, f, -1).mean(dim=1)


class SmallCNN(nn.Module):
    """Four conv blocks and global max pooling: fast enough to train on 2 CPU cores.

    GroupNorm rather than BatchNorm: with small datasets and batches, BatchNorm's running
    statistics drift from what the network learned on batch statistics once it starts to
    memorise, and evaluation collapses to one class; GroupNorm behaves the same in train and eval.
    Global max pooling reports whether a local pattern occurs anywhere (a small object in a frame,
    a tone in a spectrogram); on the demo data it learns several times faster than average pooling.
    """

    def __init__(self, in_channels: int, width: int = 16) -> None:
        super().__init__()
        chans = [in_channels, width, width * 2, width * 4, width * 4]
        layers: list[nn.Module] = []
        for c_in, c_out in zip(chans[:-1], chans[1:]):
            layers += [
                nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
                nn.GroupNorm(4, c_out),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(2, ceil_mode=True),
            ]
        self.body = nn.Sequential(*layers)
        self.pool = nn.AdaptiveMaxPool2d(1)
        self.out_dim = chans[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.body(x)).flatten(1)


class ResNet18(nn.Module):
    """torchvision ResNet-18, random init, first conv adapted to the input's channel count."""

    def __init__(self, in_channels: int) -> None:
        super().__init__()
        from torchvision.models import resnet18

        net = resnet18(weights=None)
        if in_channels != 3:
            net.conv1 = nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
        net.fc = nn.Identity()
        self.net = net
        self.out_dim = 512

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class MobileNetV2(nn.Module):
    """torchvision MobileNetV2's convolutional body (MIS-ME's image encoder) and global average pooling;
    random init, or the `weights` file's (then `initialise` leaves it alone: `pretrained`)."""

    Options = MobileNetV2Params

    def __init__(self, in_channels: int, width: float = 1.0, weights: str | None = None) -> None:
        super().__init__()
        from torchvision.models import mobilenet_v2

        net = mobilenet_v2(weights=None, width_mult=width)
        if in_channels != 3:
            first = net.features[0][0]
            net.features[0][0] = nn.Conv2d(in_channels, first.out_channels, 3, stride=2, padding=1, bias=False)
        self.features = net.features
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.out_dim = int(net.last_channel)
        self.pretrained = weights is not None
        if weights is not None:
            self.load_weights(Path(weights))

    def load_weights(self, path: Path) -> None:
        """Load the `features.*` tensors of a state dict file (a whole torchvision MobileNetV2's, or the
        body's alone); errors name the file and what does not fit."""
        if not path.is_file():
            raise FileNotFoundError(f"{path}: pretrained MobileNetV2 weights not found (encoder option weights)")
        state = torch.load(path, map_location="cpu", weights_only=True)
        state = state.get("state_dict", state) if isinstance(state, dict) else state
        body = {k.removeprefix("features."): v for k, v in state.items() if k.startswith("features.")}
        body = body or {k: v for k, v in state.items() if k.split(".")[0].isdigit()}
        if not body:
            raise ValueError(f"{path}: holds no MobileNetV2 `features.*` tensors; give a torchvision state dict")
        try:
            self.features.load_state_dict(body)
        except RuntimeError as exc:
            raise ValueError(
                f"{path}: does not fit this MobileNetV2 (width and input channels must match the file's): {exc}"
            ) from exc

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.features(x)).flatten(1)


class RowBatchNorm(nn.BatchNorm1d):
    """BatchNorm1d that normalises a training batch of one row with its running statistics (a batch
    statistic of one row is undefined), as the last, short batch of an epoch can be."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training and x.shape[0] == 1:
            return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, False, 0.0, self.eps)
        return super().forward(x)


class TabularMLP(nn.Module):
    """MIS-ME's network for the weather table: per hidden layer Linear, BatchNorm, ReLU, dropout; the
    last width is the feature size."""

    Options = TabularMLPParams
    tabular = True

    def __init__(self, in_features: int, hidden: Sequence[int] = (256, 128, 64, 32, 16), dropout: float = 0.2) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = in_features
        for h in hidden:
            layers += [nn.Linear(width, h), RowBatchNorm(h), nn.ReLU(inplace=True), nn.Dropout(dropout)]
            width = h
        self.body = nn.Sequential(*layers)
        self.out_dim = width

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class MaskedTransformer(nn.Module):
    """A Transformer encoder over (B, T, d_model) step embeddings with a padding mask: padded steps are
    left out of attention and of the mean over steps, and positions count only the steps before that
    hold data, so padding (at the start, as MulT-style aligned features, or at the end) changes no
    output. A sequence that is all padding keeps every step (a mean over nothing is undefined)."""

    def __init__(self, d_model: int, heads: int, layers: int, dropout: float, max_len: int) -> None:
        super().__init__()
        self.position = nn.Parameter(torch.zeros(max_len, d_model))
        nn.init.normal_(self.position, std=0.02)
        layer = nn.TransformerEncoderLayer(d_model, heads, 4 * d_model, dropout, batch_first=True)
        self.body = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.out_dim = d_model

    def encode(self, steps: torch.Tensor, pad: torch.Tensor) -> torch.Tensor:
        """(B, d_model): the masked mean of the encoded `steps` (B, T, d_model); `pad` (B, T) is True at padding."""
        if steps.shape[1] > self.position.shape[0]:
            raise ValueError(
                f"sequences of {steps.shape[1]} steps exceed max_len {self.position.shape[0]}; raise max_len"
            )
        pad = pad & ~pad.all(dim=1, keepdim=True)
        keep = ~pad
        index = (keep.long().cumsum(dim=1) - 1).clamp(min=0)  # the k-th step holding data gets position k
        h = self.body(steps + self.position[index], src_key_padding_mask=pad)
        weight = keep.unsqueeze(-1).to(h.dtype)
        return (h * weight).sum(dim=1) / weight.sum(dim=1)


class SequenceTransformer(MaskedTransformer):
    """A Transformer encoder over (B, T, D) feature sequences, averaged over the steps that hold data.

    Aligned-feature datasets pad short sequences with steps of zeros; after the per-modality
    standardisation every value of such a step is the same constant, so a step whose D >= 2 values are
    all equal is taken as padding and masked (MaskedTransformer). With D = 1 nothing is masked."""

    Options = SequenceTransformerParams
    sequence = True

    def __init__(
        self,
        in_features: int,
        d_model: int = 64,
        heads: int = 4,
        layers: int = 2,
        dropout: float = 0.1,
        max_len: int = 512,
    ) -> None:
        super().__init__(d_model, heads, layers, dropout, max_len)
        self.project = nn.Linear(in_features, d_model)

    @staticmethod
    def padding(x: torch.Tensor) -> torch.Tensor:
        """(B, T) True where a step is padding (all its values equal, with at least two values); a
        sequence that is all padding has none."""
        if x.shape[-1] < 2:
            return torch.zeros(x.shape[:2], dtype=torch.bool, device=x.device)
        pad = (x.amax(dim=-1) - x.amin(dim=-1)) == 0
        return pad & ~pad.all(dim=1, keepdim=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.encode(self.project(x), self.padding(x))


class TextTransformer(MaskedTransformer):
    """A Transformer encoder over (B, T) token ids (int64, 0 = padding): a learned embedding of
    `vocab_size` ids, learned positions, and the mean over the tokens that are not padding."""

    Options = TextTransformerParams
    tokens = True

    def __init__(
        self,
        vocab_size: int | None = None,
        dim: int = 64,
        heads: int = 4,
        layers: int = 2,
        dropout: float = 0.1,
        max_len: int = 512,
    ) -> None:
        if vocab_size is None:
            raise ValueError("text_transformer needs vocab_size: the dataset's (g2d.models.resolve_encoder) or given")
        super().__init__(dim, heads, layers, dropout, max_len)
        self.embed = nn.Embedding(vocab_size, dim, padding_idx=0)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        if ids.dtype not in (torch.int32, torch.int64):
            raise TypeError(
                f"text_transformer reads token ids, got {ids.dtype} inputs; declare the modality in "
                "preprocess.token_modalities so that it is stored and passed as ids"
            )
        return self.encode(self.embed(ids), ids == 0)


def build_encoder(spec: EncoderSpec, input_shape: tuple[int, ...]) -> tuple[nn.Module, int]:
    """Build the encoder of `spec` (a name, or a mapping with its options) for samples of `input_shape`
    (without batch); return it and its feature size."""
    lookup(ENCODERS, spec if isinstance(spec, str) else str(spec.get("name")), "encoder")  # KeyError lists them
    name, options = encoder_options(spec, "encoder")
    cls = ENCODERS[name].load()
    kwargs = dataclasses.asdict(options) if options is not None else {}
    if getattr(cls, "tokens", False):
        if len(input_shape) != 1:
            raise ValueError(f"encoder {name} reads token ids (T,), got samples of shape {input_shape}")
        backbone = cls(**kwargs)
        return backbone, int(backbone.out_dim)
    if getattr(cls, "tabular", False) or getattr(cls, "sequence", False):
        rank, what = (1, "rows of features (F,)") if getattr(cls, "tabular", False) else (2, "sequences (T, D)")
        if len(input_shape) != rank:
            raise ValueError(f"encoder {name} reads {what}, got samples of shape {input_shape}")
        backbone = cls(input_shape[-1], **kwargs)
        return backbone, int(backbone.out_dim)
    if len(input_shape) not in (3, 4):
        raise ValueError(
            f"encoder {name} needs (C, H, W) or (F, C, H, W) samples, got {input_shape}"
            + ("; rows of features need a tabular encoder (tabular_mlp)" if len(input_shape) == 1 else "")
            + ("; sequences need a sequence encoder (sequence_transformer)" if len(input_shape) == 2 else "")
        )
    backbone = cls(input_shape[-3], **kwargs)
    return FramePooling(backbone), int(backbone.out_dim)
