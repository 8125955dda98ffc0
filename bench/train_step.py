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

Reference-style step against ours, end to end, in the same run: per batch the reference decodes every
item from its raw files (a wav through soundfile and the CREMA-D source's spectrogram, a JPEG frame
through OpenCV), runs both teachers forward, then the student step; ours reads the HDF5 file and the
cached teacher outputs (`data.workers: auto`), then the same student step. Full run: the paper
preset's CREMA-D shapes (audio 1x257x188 from 3 s at 22,050 Hz, one 224x224 frame, ResNet-18);
--quick: the demo's shapes and small CNNs.

Everything runs on CUDA when present (batches pinned and copied asynchronously, epochs synchronised
before the clock stops), with the GPU's utilisation sampled after every timed epoch
(torch.cuda.utilization, which needs pynvml); on the CPU otherwise.

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

from g2d.config.params import AugmentParams, DataParams, Params
from g2d.datasets import cremad
from g2d.io.dataset_file import DatasetMeta, load_split, open_split, read_meta
from g2d.io.score_cache import TeacherScores, read_scores
from g2d.methods.base import Method
from g2d.models.student import MultimodalStudent, UnimodalModel
from g2d.stages import score, train_student, train_teachers
from g2d.training.augment import BankViews, FixedView, FreshCrops, draw_bank, frame_sizes
from g2d.training.data import Normalizer, SplitTensors, resolve_workers
from g2d.training.engine import StepFn
from g2d.training.optim import build_optimizer
from g2d.training.predict import predict_unimodal
from g2d.training.student import make_method, student_step
from g2d.transforms.audio import clip_shapes, fit_length, load_audio, log_spectrogram
from g2d.transforms.video import to_rgb_square
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
DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")
NO_GPU = "not measured (no GPU in this session)"
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
    ).to(DEVICE)
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


def synchronised(fn: Callable[[], None]) -> Callable[[], None]:
    """`fn`, then a wait for the GPU's queued work, so that a timed epoch includes it."""

    def run() -> None:
        fn()
        if DEVICE.type == "cuda":
            torch.cuda.synchronize(DEVICE)

    return run


UTILISATION: dict[str, list[float]] = {}  # per kind of epoch, the GPU's utilisation (%) sampled after each


def gpu_utilisation(kind: str) -> str:
    """Mean GPU utilisation sampled after `kind`'s timed epochs, or why there is none."""
    if DEVICE.type != "cuda":
        return NO_GPU
    samples = UTILISATION.get(kind, [])
    return f"{np.mean(samples):.0f}%" if samples else "n/a (torch.cuda.utilization needs pynvml)"


def sample_utilisation(kind: str) -> None:
    if DEVICE.type != "cuda":
        return
    try:
        UTILISATION.setdefault(kind, []).append(float(torch.cuda.utilization(DEVICE)))
    except (ModuleNotFoundError, RuntimeError):  # no pynvml, or NVML unavailable
        pass


def run_epochs(epochs: dict[str, Callable[[], None]], reps: int, tag: str = "") -> dict[str, list[float]]:
    """Wall time of each kind of epoch, `reps` times, in turns (each round starts one kind later); on CUDA
    each epoch waits for the GPU before the clock stops, and the GPU's utilisation is sampled after it
    (under `tag` + kind)."""
    kinds = list(epochs)
    times: dict[str, list[float]] = {k: [] for k in kinds}
    for r in range(reps):
        for kind in kinds[r % len(kinds) :] + kinds[: r % len(kinds)]:
            times[kind].append(timed(synchronised(epochs[kind])))
            sample_utilisation(tag + kind)
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
    device = DEVICE
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
    times = run_epochs({k: functools.partial(epoch, k) for k in ("pure", *PATHS)}, reps, tag=f"{id(setup)} ")
    pure = min(times["pure"])
    return {
        "steps": len(built),
        "samples/s memory": n / min(times["memory"]),
        "gpu memory": gpu_utilisation(f"{id(setup)} memory"),
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
    teachers = {
        m: UnimodalModel(setup.encoders[m], shape, classes).to(DEVICE).eval() for m, (shape, _) in setup.shapes.items()
    }
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
    device = DEVICE
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


@dataclass(frozen=True)
class RawClips:
    """Clips as the reference reads them: audio decoding and spectrogram settings, frame size, encoder,
    batch size and how many clips an epoch has."""

    sample_rate: int
    duration: float
    n_fft: int
    hop_length: int
    size: int
    encoder: str
    batch_size: int
    clips: int

    @property
    def n_samples(self) -> int:
        return int(round(self.sample_rate * self.duration))

    def setup(self) -> Setup:
        """The same shapes as a Setup (what our path stores), one frame per clip."""
        shapes = clip_shapes(self.n_samples, self.n_fft, self.hop_length, 1, self.size)
        enc = {m: self.encoder for m in shapes}
        return Setup(shapes, enc, 6, self.batch_size, self.clips, self.clips, ("video",))


# config/presets/paper.yaml's CREMA-D (3 s at 22,050 Hz, n_fft 512, hop 353: 1x257x188; one 224x224 frame;
# ResNet-18; batch 16) and, for --quick, the demo's shapes with small CNNs.
PAPER_CLIPS = RawClips(22050, 3.0, 512, 353, 224, "resnet18", 16, 32)
QUICK_CLIPS = RawClips(8000, 2.0, 256, 256, 48, "small_cnn", 16, 64)


def write_raw_clips(root: Path, clips: RawClips) -> list[tuple[Path, Path]]:
    """Per clip a mono wav (soundfile) and one 480x360 JPEG frame (CREMA-D's video size; OpenCV, quality 95)."""
    import cv2
    import soundfile

    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    files = []
    for i in range(clips.clips):
        wav, jpg = root / f"{i}.wav", root / f"{i}.jpg"
        soundfile.write(wav, rng.normal(scale=0.1, size=clips.n_samples).astype(np.float32), clips.sample_rate)
        cv2.imwrite(str(jpg), rng.integers(0, 256, size=(360, 480, 3), dtype=np.uint8), [cv2.IMWRITE_JPEG_QUALITY, 95])
        files.append((wav, jpg))
    return files


def decoded_batch(files: list[tuple[Path, Path]], index: np.ndarray, clips: RawClips, norm: Normalizer) -> Batch:
    """A batch as the reference builds it: every item decoded from its wav and JPEG now, standardised."""
    import cv2

    audio, video = [], []
    for i in index:
        wav, jpg = files[int(i)]
        wave = fit_length(load_audio(wav, clips.sample_rate), clips.n_samples)
        audio.append(log_spectrogram(wave, clips.n_fft, clips.hop_length)[np.newaxis])
        video.append(to_rgb_square(cv2.imread(str(jpg)), clips.size)[np.newaxis])
    inputs = {"audio": norm.inputs("audio", np.stack(audio)), "video": norm.inputs("video", np.stack(video))}
    labels = torch.from_numpy(np.asarray(index) % 6)
    return Batch(
        index=torch.from_numpy(np.asarray(index)),
        inputs={m: x.to(DEVICE) for m, x in inputs.items()},
        target=labels.to(DEVICE),
    )


def time_reference(clips: RawClips, reps: int, tmp: Path) -> dict[str, Any]:
    """Epoch time of the reference-style step (decode every item, both teachers every batch, student step)
    and of ours (HDF5 + cached teacher outputs, `data.workers: auto`), interleaved; the same G2D step."""
    setup = clips.setup()
    rig = build_rig(setup, clips.clips, tmp)
    files = write_raw_clips(tmp / "raw", clips)
    teachers = frozen_teachers(setup, rig.meta.num_outputs)
    ours = SplitTensors(
        open_split(rig.h5, "train", "memory"),
        rig.norm,
        DEVICE,
        teacher=rig.teacher,
        workers=resolve_workers(DataParams()),
    )
    steps = {"reference": rig.step(teachers), "ours": rig.step()}
    order = np.random.default_rng(0).permutation(clips.clips)
    batches = [order[i : i + clips.batch_size] for i in range(0, clips.clips, clips.batch_size)]

    def epoch(kind: str) -> None:
        if kind == "reference":
            epoch_waiting((decoded_batch(files, idx, clips, rig.norm) for idx in batches), steps[kind])
        else:
            epoch_waiting(ours.batches(clips.batch_size, shuffle_seed=0), steps[kind])

    epoch("reference")  # warm-up: librosa's first STFT, kernel selection
    times = run_epochs({k: functools.partial(epoch, k) for k in ("reference", "ours")}, reps, tag="reference ")
    best = {k: min(v) for k, v in times.items()}
    return {
        **{f"{k} (s)": v for k, v in best.items()},
        **{f"{k} samples/s": clips.clips / v for k, v in best.items()},
        **{f"{k} gpu": gpu_utilisation(f"reference {k}") for k in best},
        "ratio": best["reference"] / best["ours"],
        "workers": resolve_workers(DataParams()),
    }


def print_reference(quick: bool, reps: int, tmp: Path) -> None:
    clips = QUICK_CLIPS if quick else PAPER_CLIPS
    r = time_reference(clips, reps, tmp)
    (a_shape, _), (v_shape, _) = clips.setup().shapes.values()
    print(
        f"\nReference-style student step against ours, end to end ({DEVICE.type}; "
        f"{'demo shapes, --quick' if quick else 'the paper preset'}: audio {'x'.join(map(str, a_shape))} "
        f"from {clips.duration:g} s at {clips.sample_rate} Hz, frames {'x'.join(map(str, v_shape))}, "
        f"{clips.encoder}, batch {clips.batch_size}, {clips.clips} clips, G2D; fastest of {reps} interleaved "
        f"epochs after a warm-up):\n"
    )
    rows = [
        [
            "reference: decode wav + JPEG per item, both teachers every batch",
            r["reference (s)"],
            r["reference samples/s"],
            r["reference gpu"],
        ],
        [
            f"ours: HDF5 + cached teacher outputs, {r['workers']} DataLoader workers (auto)",
            r["ours (s)"],
            r["ours samples/s"],
            r["ours gpu"],
        ],
    ]
    print(table(["student epoch", "wall time (s)", "samples/s", "GPU utilisation"], rows))
    print(f"\nEnd-to-end ratio, reference / ours ({DEVICE.type}): {r['ratio']:.2f}x")
    if DEVICE.type != "cuda":
        print(f"GPU: {NO_GPU}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer samples and repetitions")
    parser.add_argument("--reps", type=int, default=None, help="timed epochs per path (default 4, quick 2)")
    parser.add_argument(
        "--views", type=int, default=8, help="views per clip in the bank (default 8, the paper preset's)"
    )
    parser.add_argument(
        "--only-reference",
        action="store_true",
        help="only the reference-style step against ours (written to docs/results/train_step-reference.md)",
    )
    args = parser.parse_args()
    reps = args.reps or (2 if args.quick else 4)
    gpu = torch.cuda.get_device_name(DEVICE) if DEVICE.type == "cuda" else NO_GPU
    print(f"machine: {machine()}; GPU: {gpu}\n")
    if args.only_reference:
        with tempfile.TemporaryDirectory(prefix="g2d-bench-") as tmp:
            print_reference(args.quick, args.reps or (1 if not args.quick else 2), Path(tmp))
        return
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
                    r["samples/s memory"],
                    r["gpu memory"],
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
                    "samples/s, memory",
                    "GPU utilisation, memory",
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
        (Path(tmp) / "reference").mkdir()
        print_reference(args.quick, max(1, reps // 2), Path(tmp) / "reference")


if __name__ == "__main__":
    with recorded("train_step-reference" if "--only-reference" in sys.argv else "train_step"):
        main()
