"""Student training through the real data path against pure compute, and teacher forward passes.

For each input shape set (the demo's; AV-MNIST's: image 1x28x28, audio 1x112x112, 10 classes;
CREMA-D's with ResNet-18: audio 1x257x188, one 3x224x224 frame) a synthetic HDF5 file and teacher
cache are written with the project's writers. One G2D student then trains epochs that are timed,
interleaved in one run (the fastest of each kind is kept):
  - pure compute: forward, backward and optimizer step on batches already built in memory;
  - memory / stream / stream + 1 worker: the same steps on batches built by SplitTensors from
    the file (held in memory, or read batch by batch, in-process or by a DataLoader worker).
The ratio real / pure is the data path's cost (target <= 1.15).

Teacher forward passes are counted with a global forward hook on every UnimodalModel while the real
stages run (score, then train_student with the cache on and off): none with the cache on.

    python bench/train_step.py [--quick] [--reps N]
"""

from __future__ import annotations

import argparse
import functools
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from common import bench_params, machine, table, timed, write_synthetic, write_synthetic_scores
from g2d.datasets import cremad
from g2d.io.hdf5 import load_split, open_split, read_meta, read_scores
from g2d.models.student import MultimodalStudent, UnimodalModel
from g2d.stages import score, train_student, train_teachers
from g2d.training.data import Normalizer, SplitTensors
from g2d.training.optim import build_optimizer
from g2d.training.student import make_method, student_step

TARGET = 1.15
PATHS = ("memory", "stream", "stream, 1 worker")


@dataclass(frozen=True)
class Setup:
    """One input shape set: per-modality (shape, dtype) and encoder, classes, batch size, train samples."""

    shapes: dict[str, tuple[tuple[int, ...], str]]
    encoders: dict[str, str]
    classes: int
    batch_size: int
    train: int
    quick_train: int


def setups() -> dict[str, Setup]:
    demo = bench_params().datasets["demo"]
    return {
        "demo (small_cnn)": Setup(cremad.sample_shapes(demo.preprocess), dict(demo.encoders), 6, 32, 96, 64),
        "AV-MNIST shapes (small_cnn)": Setup({"image": ((1, 28, 28), "uint8"), "audio": ((1, 112, 112), "float32")},
                                             {"image": "small_cnn", "audio": "small_cnn"}, 10, 32, 128, 64),
        "CREMA-D shapes (resnet18)": Setup({"audio": ((1, 257, 188), "float32"), "video": ((1, 3, 224, 224), "uint8")},
                                           {"audio": "resnet18", "video": "resnet18"}, 6, 8, 16, 8),
    }


def time_setup(setup: Setup, n: int, reps: int, tmp: Path) -> dict[str, Any]:
    """Fastest epoch time of pure compute and of each real data path, measured in turns."""
    h5 = write_synthetic(tmp / "data.h5", setup.shapes, {"train": n, "val": 4, "test": 4}, setup.classes)
    meta = read_meta(h5)
    torch.manual_seed(0)
    model = MultimodalStudent(meta.modalities, setup.encoders, {m: s for m, (s, _) in setup.shapes.items()},
                              "late", meta.num_outputs)
    dim = int(model.encoders[meta.modalities[0]].backbone.out_dim)
    cache = write_synthetic_scores(tmp / "scores.h5", {"train": n}, meta.modalities, dim, setup.classes)
    teacher = read_scores(cache, "train")
    params = bench_params(batch_size=setup.batch_size)
    method = make_method(params, "g2d", meta)
    method.setup(None)
    step = student_step(model, method, build_optimizer(params, model.parameters()), meta.task, None)
    device = torch.device("cpu")
    norm = Normalizer.fit(load_split(h5, "train"), meta.task)
    data = {"memory": SplitTensors(open_split(h5, "train", "memory"), norm, device, teacher=teacher),
            "stream": SplitTensors(open_split(h5, "train", "stream"), norm, device, teacher=teacher),
            "stream, 1 worker": SplitTensors(open_split(h5, "train", "stream"), norm, device, teacher=teacher,
                                             workers=1)}
    built = list(data["memory"].batches(setup.batch_size, shuffle_seed=0))
    waits: dict[str, list[float]] = {k: [] for k in PATHS}

    def epoch(kind: str) -> None:
        """One epoch; for a real path, also the time spent waiting for the next batch."""
        batches = iter(built) if kind == "pure" else data[kind].batches(setup.batch_size, shuffle_seed=0)
        wait = 0.0
        while True:
            start = time.perf_counter()
            batch = next(batches, None)
            wait += time.perf_counter() - start
            if batch is None:
                break
            step(batch, 1)
        if kind != "pure":
            waits[kind].append(wait)

    epoch("pure")  # warm-up: first steps pay for allocation and kernel selection
    kinds = ["pure", *PATHS]
    times: dict[str, list[float]] = {k: [] for k in kinds}
    for r in range(reps):
        for kind in kinds[r % len(kinds):] + kinds[:r % len(kinds)]:
            times[kind].append(timed(functools.partial(epoch, kind)))
    pure = min(times["pure"])
    return {"steps": len(built), "pure": pure, **{k: min(times[k]) for k in PATHS},
            **{f"ratio {k}": min(times[k]) / pure for k in PATHS},
            **{f"wait {k}": sum(waits[k]) / sum(times[k]) for k in PATHS}}


class ForwardCounter:
    """Counts forward passes of teacher models (UnimodalModel) anywhere, by a global forward hook."""

    def __init__(self) -> None:
        self.calls = 0
        self.samples = 0

    def __call__(self, module: torch.nn.Module, args: tuple, output: Any) -> None:
        if isinstance(module, UnimodalModel):
            self.calls += 1
            self.samples += int(args[0].shape[0])

    def __enter__(self) -> "ForwardCounter":
        self._handle = torch.nn.modules.module.register_module_forward_hook(self)
        return self

    def __exit__(self, *exc: Any) -> None:
        self._handle.remove()


def count_teacher_forwards(tmp: Path) -> list[list[Any]]:
    """Teacher forwards in the real score and train_student stages on a small demo-shaped file."""
    params = bench_params(tau1=1, tau2=1, teacher={"epochs": 1})
    setup = setups()["demo (small_cnn)"]
    h5 = write_synthetic(tmp / "demo.h5", setup.shapes, {"train": 48, "val": 8, "test": 8}, setup.classes)
    tdir, cache = tmp / "teachers", tmp / "scores.h5"
    train_teachers.run(params, "demo", 0, h5, tdir, tmp / "resume")
    rows = []
    with ForwardCounter() as count:
        score.run(params, h5, tdir, cache, tmp / "teacher_metrics.json", tmp / "teacher_confidence.png")
    rows.append(["score stage (once per seed)", count.calls, count.samples])
    for cached in (True, False):
        p = bench_params(tau1=1, tau2=1, teacher_cache=cached)
        with ForwardCounter() as count:
            train_student.run(p, "demo", "g2d", 0, h5, cache, tdir, tmp / f"s{cached}.pt", tmp / f"l{cached}.json",
                              tmp / f"r{cached}")
        rows.append([f"train_student, teacher_cache: {str(cached).lower()} (2 epochs, 48 samples)", count.calls,
                     count.samples])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer samples and repetitions")
    parser.add_argument("--reps", type=int, default=None, help="timed epochs per path (default 4, quick 2)")
    args = parser.parse_args()
    reps = args.reps or (2 if args.quick else 4)
    print(f"machine: {machine()}\n")
    rows = []
    with tempfile.TemporaryDirectory(prefix="g2d-bench-") as tmp:
        for name, setup in setups().items():
            n = setup.quick_train if args.quick else setup.train
            sub = Path(tmp) / str(len(rows))
            sub.mkdir()
            r = time_setup(setup, n, reps if "resnet" not in name else max(1, reps // 2), sub)
            worst = max(r[f"ratio {k}"] for k in PATHS[:2])
            rows.append([name, n, r["steps"], r["pure"], *(r[k] for k in PATHS), *(r[f"ratio {k}"] for k in PATHS),
                         "yes" if worst <= TARGET else "no", *(f"{100 * r[f'wait {k}']:.1f}%" for k in PATHS)])
            print(f"{name}: done", file=sys.stderr)
        print(f"Epoch wall time (s, fastest of {reps} interleaved epochs: the least disturbed by other load) and "
              "ratio to pure compute:\n")
        print(table(["inputs", "train samples", "steps", "pure compute", *PATHS,
                     *(f"ratio {k}" for k in PATHS), f"memory & stream <= {TARGET}",
                     *(f"waiting for data, {k}" for k in PATHS)], rows))
        print("\n(waiting for data: share of the real path's epochs spent in next(batches), measured inside the "
              "same epochs, so it does not depend on load changing between epochs)")
        print("\nTeacher forward passes, counted by a forward hook on every teacher module:\n")
        print(table(["stage", "teacher forward calls", "samples through teachers"], count_teacher_forwards(Path(tmp))))


if __name__ == "__main__":
    main()
