"""Per-modality encoders. Each maps one modality's batch to a feature vector (B, D).

Inputs are (B, C, H, W) images/spectrograms or (B, F, C, H, W) frame stacks; frame stacks are
encoded frame by frame and averaged over time (the paper's visual pathway pools over frames).
Add an encoder by writing a builder and naming it in `g2d.models.ENCODERS`.
"""

from __future__ import annotations

import torch
from torch import nn

from g2d.models import ENCODERS
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


def build_encoder(name: str, input_shape: tuple[int, ...]) -> tuple[nn.Module, int]:
    """Build encoder `name` for samples of `input_shape` (without batch); return it and its feature size."""
    if len(input_shape) == 2:
        raise ValueError(f"encoder {name} needs (C, H, W) or (F, C, H, W) samples, got {input_shape}")
    in_channels = input_shape[-3]
    backbone = lookup(ENCODERS, name, "encoder").load()(in_channels)
    out_dim = int(backbone.out_dim)  # type: ignore[arg-type]
    return FramePooling(backbone), out_dim
