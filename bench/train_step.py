"""Student training through the real data path against pure compute, and teacher forward passes.

For each input shape set (the demo's; AV-MNIST's: image 1x28x28, audio 1x112x112, 10 classes;
CREMA-D's with ResNet-18: audio 1x257x188, one 3x224x224 frame) a synthetic HDF5 file and teacher
cache are written with the project's writers. One G2D student then trains epochs that are timed,
interleaved in one run (the fastest of each kind is kept):
  - pure compute: forward, backward and optimizer step on batches already built in memory;
  - memory / stream / stream + 1 worker: the same steps on batches built by SplitTensors from
    the file (held in memory, or read batch by batch, in-process or by a DataLoader worker).
The ratio real / pure is the data path's cost (target <= 1.15).

Augmentation, three ways (`datasets.<name>.augment.kind`), on the same shapes and student, in memory
mode, epochs interleaved:
  - none: no crop, cached teacher outputs (as above);
  - views: each clip one view of a bank of K (`--views`, the paper preset's 8) per epoch, cropped
    while the batch is read, with the cached teacher outputs of that view; its one-time cost is the
    bank's drawing and the score stage's extra teacher pass over the training split per view;
  - online: a fresh crop per clip and epoch, and the teachers run on every batch.
The share of each epoch spent reading and cropping batches, and in the teachers' forward passes, is
measured inside the timed epochs.

Teacher forward passes are counted with a global forward hook on every UnimodalModel while the real
stages run (score, then train_student with the cache on and off, and with each augmentation kind):
none with the cache on, also with the view bank.

    python bench/train_step.py [--quick] [--reps N] [--views K]
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from g2d.config.params import AugmentParams, Params
from g2d.datasets import cremad
from g2d.io.dataset_file import DatasetMeta, load_split, open_split, read_meta
from g2d.io.score_cache import TeacherScores, read_scores
from g2d.methods.base import Method
from g2d.models.student import MultimodalStudent, UnimodalModel
from g2d.stages import score, train_student, train_teachers
from g2d.training.augment import BankViews, FixedView, FreshCrops, draw_bank, frame_sizes
from g2d.training.data import Normalizer, SplitTensors
from g2d.training.engine import StepFn
from g2d.training.optim import build_optimizer
from g2d.training.predict import predict_unimodal
from g2d.training.student import make_method, student_step
from g2d.types import Batch

from common import (
    bench_params,
    machine,
    recorded,
    synthetic_scores,
    table,
    timed,
    write_synthetic,
    write_synthetic_scores,
)

TARGET = 1.15
PATHS = ("memory", "stream", "stream, 1 worker")
WAYS = ("none", "views", "online")


@dataclass(frozen=True)
class Setup:
    """One input shape set: per-modality (shape, dtype) and encoder, classes, batch size, train samples,
    and which modalities are frames or images (what augmentation crops)."""

    shapes: dict[str, tuple[tuple[int, ...], str]]
    encoders: dict[str, str]
    classes: int
    batch_size: int
    train: int
    quick_train: int
    images: tuple[str, ...]


def setups() -> dict[str, Setup]:
    demo = bench_params().datasets["demo"]
    return {
        "demo (small_cnn)": Setup(
            cremad.sample_shapes(demo.preprocess), dict(demo.encoders), 6, 32, 96, 64, ("video",)
        ),
        "AV-MNIST shapes (small_cnn)": Setup(
            {"image": ((1, 28, 28), "uint8"), "audio": ((1, 112, 112), "float32")},
            {"image": "small_cnn", "audio": "small_cnn"},
            10,
            32,
            128,
            64,
            ("image",),
        ),
        "CREMA-D shapes (resnet18)": Setup(
            {"audio": ((1, 257, 188), "float32"), "video": ((1, 3, 224, 224), "uint8")},
            {"audio": "resnet18", "video": "resnet18"},
            6,
            8,
            16,
            8,
            ("video",),
        ),
    }


@dataclass
class Rig:
    """What every timed path of one setup shares: the synthetic file, one G2D student and its optimiser,
    the training split's teacher cache and the normaliser."""

    h5: Path
    meta: DatasetMeta
    params: Params
    model: MultimodalStudent
    method: Method
    optimizer: torch.optim.Optimizer
    teacher: dict[str, TeacherScores]
    norm: Normalizer
    feature_dim: int

    def step(self, teachers: dict[str, torch.nn.Module] | None = None) -> StepFn:
        """The real training step (online teachers if given)."""
        return student_step(self.model, self.method, self.optimizer, self.meta.task, teachers)


def build_rig(setup: Setup, n: int, tmp: Path) -> Rig:
    h5 = write_synthetic(tmp / "data.h5", setup.shapes, {"train": n, "val": 4, "test": 4}, setup.classes)
    meta = read_meta(h5)
    torch.manual_seed(0)
    model = MultimodalStudent(
        meta.modalities, setup.encoders, {m: s for m, (s, _) in setup.shapes.items()}, "late", meta.num_outputs
    )
    dim = int(model.encoders[meta.modalities[0]].backbone.out_dim)
    cache = write_synthetic_scores(tmp / "scores.h5", {"train": n}, meta.modalities, dim, setup.classes)
    params = bench_params(batch_size=setup.batch_size)
    method = make_method(params, "g2d", meta)
    method.setup(None)
    return Rig(
        h5=h5,
        meta=meta,
        params=params,
        model=model,
        method=method,
        optimizer=build_optimizer(params, model.parameters()),
        teacher=read_scores(cache, "train"),
        norm=Normalizer.fit(load_split(h5, "train"), meta.task),
        feature_dim=dim,
    )


def run_epochs(epochs: dict[str, Callable[[], None]], reps: int) -> dict[str, list[float]]:
    """Wall time of each kind of epoch, `reps` times, in turns (each round starts one kind later)."""
    kinds = list(epochs)
    times: dict[str, list[float]] = {k: [] for k in kinds}
    for r in range(reps):
        for kind in kinds[r % len(kinds) :] + kinds[: r % len(kinds)]:
            times[kind].append(timed(epochs[kind]))
    return times


def epoch_waiting(batches: Iterator[Batch], step: StepFn, step_times: list[float] | None = None) -> float:
    """Train on every batch; return the time spent waiting for the next one (reading, cropping), and
    append each step's wall time, its wait included, to `step_times` if given."""
    wait = 0.0
    while True:
        start = time.perf_counter()
        batch = next(batches, None)
        wait += time.perf_counter() - start
        if batch is None:
            return wait
        step(batch, 1)
        if step_times is not None:
            step_times.append(time.perf_counter() - start)


def time_setup(setup: Setup, n: int, reps: int, tmp: Path) -> dict[str, Any]:
    """Fastest epoch time of pure compute and of each real data path, measured in turns."""
    rig = build_rig(setup, n, tmp)
    device = torch.device("cpu")
    data = {
        "memory": SplitTensors(open_split(rig.h5, "train", "memory"), rig.norm, device, teacher=rig.teacher),
        "stream": SplitTensors(open_split(rig.h5, "train", "stream"), rig.norm, device, teacher=rig.teacher),
        "stream, 1 worker": SplitTensors(
            open_split(rig.h5, "train", "stream"), rig.norm, device, teacher=rig.teacher, workers=1
        ),
    }
    built = list(data["memory"].batches(setup.batch_size, shuffle_seed=0))
    step = rig.step()
    waits: dict[str, list[float]] = {k: [] for k in PATHS}

    def epoch(kind: str) -> None:
        """One epoch; for a real path, also the time spent waiting for the next batch."""
        if kind == "pure":
            epoch_waiting(iter(built), step)
        else:
            waits[kind].append(epoch_waiting(data[kind].batches(setup.batch_size, shuffle_seed=0), step))

    epoch("pure")  # warm-up: first steps pay for allocation and kernel selection
    times = run_epochs({k: functools.partial(epoch, k) for k in ("pure", *PATHS)}, reps)
    pure = min(times["pure"])
    return {
        "steps": len(built),
        "pure": pure,
        **{k: min(times[k]) for k in PATHS},
        **{f"ratio {k}": min(times[k]) / pure for k in PATHS},
        **{f"wait {k}": sum(waits[k]) / sum(times[k]) for k in PATHS},
    }


class TimedTeacher(torch.nn.Module):
    """A frozen teacher that adds the wall time of its forward passes to `seconds`."""

    def __init__(self, model: UnimodalModel, seconds: list[float]) -> None:
        super().__init__()
        self.model = model
        self.seconds = seconds

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        start = time.perf_counter()
        out = self.model(x)
        self.seconds.append(time.perf_counter() - start)
        return out


def frozen_teachers(setup: Setup, classes: int) -> dict[str, UnimodalModel]:
    """One untrained teacher per modality (timing only needs the architecture), frozen as the stages freeze them."""
    torch.manual_seed(1)
    teachers = {m: UnimodalModel(setup.encoders[m], shape, classes).eval() for m, (shape, _) in setup.shapes.items()}
    for model in teachers.values():
        model.requires_grad_(False)
    return teachers


def time_augment(setup: Setup, n: int, reps: int, views: int, tmp: Path) -> dict[str, Any]:
    """Epoch time of each augmentation way (memory mode), its shares of reading + cropping and of
    teacher forwards, and the view bank's one-time costs (drawing it, one teacher pass per view).

    Epoch time is the sum over steps of each step's fastest of `reps` (every epoch has the same
    batches), which other load disturbs less than a whole epoch; the fastest whole epoch is kept too.
    """
    rig = build_rig(setup, n, tmp)
    device = torch.device("cpu")
    split = open_split(rig.h5, "train", "memory")
    spec = AugmentParams(kind="views", modalities=setup.images, views=views)
    sizes = frame_sizes(spec, {m: split.sample_shape(m) for m in setup.images})
    draw_s = timed(lambda: draw_bank(spec, sizes, n, seed=0))
    bank = draw_bank(spec, sizes, n, seed=0)
    per_view = synthetic_scores(np.random.default_rng(1), (views, n), setup.images, rig.feature_dim, setup.classes)
    teachers = frozen_teachers(setup, rig.meta.num_outputs)
    one_view = SplitTensors(split, rig.norm, device, augment=FixedView(bank, 0))
    view_pass_s = min(
        timed(lambda: [predict_unimodal(teachers[m], one_view, m, rig.params.eval_batch_size) for m in setup.images])
        for _ in range(max(1, reps // 2))
    )
    teacher_s: list[float] = []
    timed_teachers = {m: TimedTeacher(t, teacher_s) for m, t in teachers.items()}
    data = {
        "none": SplitTensors(split, rig.norm, device, teacher=rig.teacher),
        "views": SplitTensors(
            split, rig.norm, device, teacher=rig.teacher, augment=BankViews(bank), teacher_views=per_view
        ),
        "online": SplitTensors(
            split, rig.norm, device, augment=FreshCrops(dataclasses.replace(spec, kind="online"), sizes, n)
        ),
    }
    steps = {"none": rig.step(), "views": rig.step(), "online": rig.step(timed_teachers)}
    waits: dict[str, list[float]] = {k: [] for k in WAYS}
    in_teachers: dict[str, list[float]] = {k: [] for k in WAYS}
    step_times: dict[str, list[list[float]]] = {k: [] for k in WAYS}

    def epoch(way: str, seed: int) -> None:
        del teacher_s[:]
        step_times[way].append([])
        waits[way].append(
            epoch_waiting(data[way].batches(setup.batch_size, shuffle_seed=seed), steps[way], step_times[way][-1])
        )
        in_teachers[way].append(sum(teacher_s))

    epoch("online", 0)  # warm-up, teachers included
    step_times["online"].clear()
    times = run_epochs({w: functools.partial(epoch, w, 1) for w in WAYS}, reps)
    floor = {w: float(np.min(np.array(step_times[w]), axis=0).sum()) for w in WAYS}
    return {
        "view pass": view_pass_s,
        "bank draw": draw_s,
        **{w: floor[w] for w in WAYS},
        **{f"fastest {w}": min(times[w]) for w in WAYS},
        **{f"ratio {w}": floor[w] / floor["none"] for w in WAYS},
        **{f"wait {w}": sum(waits[w]) / sum(times[w]) for w in WAYS},
        **{f"teachers {w}": sum(in_teachers[w]) / sum(times[w]) for w in WAYS},
    }


class ForwardCounter:
    """Counts forward passes of teacher models (UnimodalModel) anywhere, by a global forward hook."""

    def __init__(self) -> None:
        self.calls = 0
        self.samples = 0

    def __call__(self, module: torch.nn.Module, args: tuple, output: Any) -> None:
        if isinstance(module, UnimodalModel):
            self.calls += 1
            self.samples += int(args[0].shape[0])

    def __enter__(self) -> ForwardCounter:
        self._handle = torch.nn.modules.module.register_module_forward_hook(self)
        return self

    def __exit__(self, *exc: Any) -> None:
        self._handle.remove()


def count_teacher_forwards(tmp: Path, views: int) -> list[list[Any]]:
    """Teacher forwards in the real score and train_student stages on a small demo-shaped file, without
    augmentation (cache on and off), with the view bank (cache on) and online (cache off)."""
    setup = setups()["demo (small_cnn)"]
    h5 = write_synthetic(tmp / "demo.h5", setup.shapes, {"train": 48, "val": 8, "test": 8}, setup.classes)
    rows = []
    for kind, cache_modes in (("none", (True, False)), ("views", (True,)), ("online", (False,))):
        augment = {"kind": kind, "views": views}
        params = bench_params(
            tau1=1,
            tau2=1,
            teacher={"epochs": 1},
            datasets={"demo": {"augment": augment}},
            teacher_cache=kind != "online",
        )
        tdir, cache = tmp / kind / "teachers", tmp / kind / "scores.h5"
        train_teachers.run(params, "demo", 0, h5, tdir, tmp / kind / "resume")
        with ForwardCounter() as count:
            score.run(
                params,
                h5,
                tdir,
                cache,
                tmp / kind / "tm.json",
                tmp / kind / "tc.png",
                augment=params.datasets["demo"].augment,
            )
        rows.append(
            [
                f"score stage, augment {kind}" + (f" (K = {views})" if kind == "views" else ""),
                count.calls,
                count.samples,
            ]
        )
        for cached in cache_modes:
            p = bench_params(tau1=1, tau2=1, teacher_cache=cached, datasets={"demo": {"augment": augment}})
            out = tmp / kind / str(cached)
            with ForwardCounter() as count:
                train_student.run(p, "demo", "g2d", 0, h5, cache, tdir, out / "s.pt", out / "l.json", out / "r")
            rows.append(
                [
                    f"train_student, augment {kind}, teacher_cache: {str(cached).lower()} (2 epochs, 48 samples)",
                    count.calls,
                    count.samples,
                ]
            )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer samples and repetitions")
    parser.add_argument("--reps", type=int, default=None, help="timed epochs per path (default 4, quick 2)")
    parser.add_argument(
        "--views", type=int, default=8, help="views per clip in the bank (default 8, the paper preset's)"
    )
    args = parser.parse_args()
    reps = args.reps or (2 if args.quick else 4)
    print(f"machine: {machine()}\n")
    rows, ways = [], []
    with tempfile.TemporaryDirectory(prefix="g2d-bench-") as tmp:
        for name, setup in setups().items():
            n = setup.quick_train if args.quick else setup.train
            setup_reps = reps if "resnet" not in name else max(1, reps // 2)
            sub = Path(tmp) / str(len(rows))
            sub.mkdir()
            r = time_setup(setup, n, setup_reps, sub)
            worst = max(r[f"ratio {k}"] for k in PATHS[:2])
            rows.append(
                [
                    name,
                    n,
                    r["steps"],
                    r["pure"],
                    *(r[k] for k in PATHS),
                    *(r[f"ratio {k}"] for k in PATHS),
                    "yes" if worst <= TARGET else "no",
                    *(f"{100 * r[f'wait {k}']:.1f}%" for k in PATHS),
                ]
            )
            (sub / "augment").mkdir()
            a = time_augment(setup, n, reps, args.views, sub / "augment")
            for way in WAYS:
                once = (
                    f"bank {a['bank draw'] * 1000:.1f} ms; score stage + {args.views} x {a['view pass']:.3g} s"
                    if way == "views"
                    else ""
                )
                ways.append(
                    [
                        name,
                        n,
                        way,
                        a[way],
                        a[f"ratio {way}"],
                        a[f"fastest {way}"],
                        f"{100 * a[f'wait {way}']:.1f}%",
                        f"{100 * a[f'teachers {way}']:.1f}%",
                        once,
                    ]
                )
            print(f"{name}: done", file=sys.stderr)
        print(
            f"Epoch wall time (s, fastest of {reps} interleaved epochs: the least disturbed by other load) and "
            "ratio to pure compute:\n"
        )
        print(
            table(
                [
                    "inputs",
                    "train samples",
                    "steps",
                    "pure compute",
                    *PATHS,
                    *(f"ratio {k}" for k in PATHS),
                    f"memory & stream <= {TARGET}",
                    *(f"waiting for data, {k}" for k in PATHS),
                ],
                rows,
            )
        )
        print(
            "\n(waiting for data: share of the real path's epochs spent in next(batches), measured inside the "
            "same epochs, so it does not depend on load changing between epochs)"
        )
        print(f"\nAugmentation, three ways (memory mode, G2D student, {reps} interleaved epochs per way):\n")
        print(
            table(
                [
                    "inputs",
                    "train samples",
                    "augment.kind",
                    "epoch (s), fastest steps",
                    "vs none",
                    "fastest whole epoch (s)",
                    "reading + cropping",
                    "teacher forwards",
                    "one-time (views)",
                ],
                ways,
            )
        )
        print(
            "\n(epoch: the sum of each step's fastest time over the epochs; shares: of all timed epochs' wall time; "
            "one-time: drawing the bank, and the score stage's extra teacher pass over the training split per view, "
            "augmented modalities only)"
        )
        print("\nTeacher forward passes, counted by a forward hook on every teacher module:\n")
        print(
            table(
                ["stage", "teacher forward calls", "samples through teachers"],
                count_teacher_forwards(Path(tmp), min(args.views, 3)),
            )
        )


if __name__ == "__main__":
    with recorded("train_step"):
        main()
