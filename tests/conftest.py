"""Shared fixtures: a small synthetic dataset file in the real HDF5 schema and matching params, and a tiny
student on plain vectors for the update rules' tests."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from torch import nn

from g2d.config.params import Params, params_from_dict
from g2d.io.dataset_file import DatasetMeta, DatasetWriter
from g2d.models.fusion import build_fusion
from g2d.models.student import MultimodalStudent
from g2d.types import Batch, TeacherBatch

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"


def write_toy_dataset(path: Path, n: dict[str, int] | None = None, seed: int = 0, task: str = "classification") -> Path:
    """Two modalities whose class signal is a per-class pattern plus noise (video a little weaker)."""
    n = n or {"train": 36, "val": 12, "test": 12}
    rng = np.random.default_rng(seed)
    classes = ("NEU", "HAP", "SAD")
    proto_a = rng.normal(size=(3, 1, 12, 10)).astype(np.float32)
    proto_v = rng.integers(0, 255, size=(3, 1, 3, 12, 12))
    meta = DatasetMeta(
        dataset="toy",
        source="cremad",
        task=task,
        modalities=("audio", "video"),
        class_names=classes if task == "classification" else (),
        preprocessing={"toy": True},
    )
    shapes = {"audio": ((1, 12, 10), "float32"), "video": ((2, 3, 12, 12), "uint8")}
    with DatasetWriter(path, meta, shapes) as w:
        for split, count in n.items():
            for i in range(count):
                c = int(rng.integers(0, 3))
                audio = proto_a[c] + rng.normal(scale=0.8, size=(1, 12, 10)).astype(np.float32)
                video = np.clip(proto_v[c] * 0.6 + rng.integers(0, 100, size=(2, 3, 12, 12)), 0, 255).astype(np.uint8)
                label = c if task == "classification" else float(1.0 + c + rng.normal(scale=0.1))
                w.append(split, {"audio": audio, "video": video}, label, f"100{i % 4}_IEO_{classes[c]}_XX_{split}{i}")
    return path


def toy_params(**overrides) -> Params:
    base = yaml.safe_load((ROOT / "params.yaml").read_text())
    d = copy.deepcopy(base)
    d["datasets"] = {
        "toy": {"source": "cremad", "raw_dir": "unused", "encoders": {"audio": "small_cnn", "video": "small_cnn"}}
    }
    d.update(
        {"seeds": [0], "tau1": 2, "tau2": 2, "batch_size": 8, "lr": 0.01, "device": "cpu", "teacher": {"epochs": 3}}
    )
    d.update(overrides)
    return params_from_dict(d)


@pytest.fixture
def toy_h5(tmp_path: Path) -> Path:
    return write_toy_dataset(tmp_path / "toy.h5")


MODS = ("a", "v")
COMMON = {"modalities": MODS, "task": "classification", "taus": (1, 1)}


class TinyStudent(MultimodalStudent):
    """MultimodalStudent on plain vectors: one linear encoder per modality (bias-free unless asked) and a
    real fusion."""

    def __init__(
        self,
        fusion: str = "late",
        dims_in: int = 3,
        dim: int = 2,
        classes: int = 3,
        modalities: tuple[str, ...] = MODS,
        seed: int = 0,
        bias: bool = False,
    ) -> None:
        nn.Module.__init__(self)
        torch.manual_seed(seed)
        self.modalities = list(modalities)
        self.encoders = nn.ModuleDict({m: nn.Linear(dims_in, dim, bias=bias) for m in modalities})
        self.fusion = build_fusion(fusion, [dim] * len(modalities), classes)


def tiny_batch(
    n: int = 4, dims_in: int = 3, modalities: tuple[str, ...] = MODS, seed: int = 1, teacher: TeacherBatch | None = None
) -> Batch:
    g = torch.Generator().manual_seed(seed)
    return Batch(
        index=torch.arange(n),
        inputs={m: torch.randn(n, dims_in, generator=g) for m in modalities},
        target=torch.tensor([0, 1, 2, 0][:n]),
        teacher=teacher,
    )
