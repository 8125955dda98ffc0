"""Optimizer, schedule and device from params, shared by teachers and students."""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import asdict
from typing import Any

import torch

from g2d.config.params import Params
from g2d.config.schema import ConfigError


def optimisation_settings(params: Params) -> dict[str, Any]:
    """The params every trained model (teacher or student) depends on: how it is initialised and
    optimised, and where; part of each stage's resume fingerprint."""
    return {
        "optimizer": params.optimizer,
        "init": params.init,
        "lr": params.lr,
        "momentum": params.momentum,
        "weight_decay": params.weight_decay,
        "scheduler": asdict(params.scheduler),
        "batch_size": params.batch_size,
        "device": params.device,
        "precision": params.precision,
    }


def build_optimizer(
    params: Params, parameters: Iterable[torch.nn.Parameter] | Iterable[dict[str, Any]]
) -> torch.optim.Optimizer:
    """The configured optimizer over `parameters`, or over parameter groups (dicts with "params" and, where
    a method sets them, their own "lr" or other keys; params' values are the defaults)."""
    if params.optimizer == "sgd":
        return torch.optim.SGD(parameters, lr=params.lr, momentum=params.momentum, weight_decay=params.weight_decay)
    if params.optimizer == "adamw":
        return torch.optim.AdamW(parameters, lr=params.lr, weight_decay=params.weight_decay)
    return torch.optim.Adam(parameters, lr=params.lr, weight_decay=params.weight_decay)


def build_scheduler(params: Params, optimizer: torch.optim.Optimizer) -> Any:
    if params.scheduler.name == "step":
        return torch.optim.lr_scheduler.StepLR(
            optimizer, step_size=params.scheduler.step_size, gamma=params.scheduler.gamma
        )
    return None


def resolve_device(name: str) -> torch.device:
    """`auto` picks CUDA when present; asking for CUDA without one is an error, not a silent fallback."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and "LOCAL_RANK" in os.environ:  # one GPU per process under torchrun
        name = f"cuda:{os.environ['LOCAL_RANK']}"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device: {name!r} was asked for but CUDA is not available; set device: auto or cpu")
    return torch.device(name)
