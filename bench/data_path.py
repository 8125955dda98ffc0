"""One epoch of student inputs: our HDF5 path against a re-creation of the reference's data path.

Raw clips in CREMA-D's layout are generated (16 kHz WAV, 224x224 FLV video at 10 fps), then:
  - ours: the preprocess stage runs once (reference audio and frame settings: 22,050 Hz, 3 s,
    n_fft 512, hop 353 -> 1x257x188; one 224x224 RGB frame); an epoch is SplitTensors.batches over
    the train split (read, standardise, batch), with the file held in memory or streamed;
  - reference (OGM-GE / G2D code, re-created): frames are extracted to JPEG once at 1 fps; every
    epoch, every clip is decoded again: librosa.load at 22,050 Hz (resampling), tile to 3 s, clip,
    STFT, log; the JPEG is decoded with OpenCV (faster than the reference's PIL, which favours the
    reference), resized to 224 and ImageNet-normalised; batches are stacked.
Both produce the same shapes for the same clips, in batches of 32, in one process with torch on one
thread (as in a DataLoader worker; on a loaded machine, torch's 2-thread parallel regions on small
tensors cost tens of milliseconds of waiting, which would inflate both paths); epochs interleave.

    python bench/data_path.py [--quick] [--reps N]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import torch

from g2d.datasets import cremad, demo
from g2d.io.dataset_file import load_split, open_split
from g2d.training.data import Normalizer, SplitTensors

from common import machine, median, recorded, table, timed

TARGET = 5.0
BATCH = 32
SAMPLE_RATE, SECONDS, N_FFT, HOP = 22050, 3, 512, 353
IMAGENET_MEAN = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)
IMAGENET_STD = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)


def extract_jpegs(video: Path, out_dir: Path) -> None:
    """The reference's one-time step: one JPEG per second of video."""
    import cv2

    out_dir.mkdir(parents=True, exist_ok=True)
    capture = cv2.VideoCapture(str(video))
    step = max(1, int(round(capture.get(cv2.CAP_PROP_FPS))))
    index = 0
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        if index % step == 0:
            cv2.imwrite(str(out_dir / f"frame_{index // step:05d}.jpg"), frame)
        index += 1
    capture.release()


def reference_audio(wav: Path) -> torch.Tensor:
    """The reference's per-item audio: load with resampling, tile, clip, STFT, log -> (1, 257, 188)."""
    import librosa

    samples, _ = librosa.load(wav, sr=SAMPLE_RATE)
    wave = np.clip(np.tile(samples, SECONDS)[: SAMPLE_RATE * SECONDS], -1.0, 1.0)
    spectrogram = librosa.stft(wave, n_fft=N_FFT, hop_length=HOP)
    return torch.from_numpy(np.log(np.abs(spectrogram) + 1e-7)).unsqueeze(0)


def reference_frame(frames_dir: Path) -> torch.Tensor:
    """The reference's per-item visual input: decode a JPEG, resize, normalise -> (1, 3, 224, 224)."""
    import cv2

    image = cv2.cvtColor(cv2.imread(str(sorted(frames_dir.iterdir())[0])), cv2.COLOR_BGR2RGB)
    x = torch.from_numpy(cv2.resize(image, (224, 224))).permute(2, 0, 1).float().div(255)
    return ((x - IMAGENET_MEAN) / IMAGENET_STD).unsqueeze(0)


def reference_epoch(raw: Path, frames: Path, ids: list[str], labels: np.ndarray, seed: int) -> int:
    """Every clip decoded from its raw files, in batches; returns the number of batches."""
    order = np.random.default_rng(seed).permutation(len(ids))
    count = 0
    for start in range(0, len(ids), BATCH):
        rows = order[start : start + BATCH]
        audio = torch.stack([reference_audio(raw / "AudioWAV" / f"{ids[i]}.wav") for i in rows])
        video = torch.stack([reference_frame(frames / ids[i]) for i in rows])
        target = torch.from_numpy(labels[rows])
        count += int(audio.shape[0] > 0 and video.shape[0] == target.shape[0])
    return count


def our_epoch(data: SplitTensors, seed: int) -> int:
    return sum(1 for _ in data.batches(BATCH, shuffle_seed=seed))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer clips and repetitions")
    parser.add_argument("--reps", type=int, default=None, help="timed epochs per path (default 3, quick 2)")
    args = parser.parse_args()
    reps = args.reps or (2 if args.quick else 3)
    actors = 4 if args.quick else 8
    torch.set_num_threads(1)
    print(f"machine: {machine()}\n")
    with tempfile.TemporaryDirectory(prefix="g2d-bench-") as tmp_name:
        tmp = Path(tmp_name)
        raw, frames, h5 = tmp / "raw", tmp / "frames", tmp / "data.h5"
        demo.generate(
            raw,
            demo.Params(
                actors=actors,
                sentences=2,
                sample_rate=16000,
                min_duration=2.0,
                max_duration=3.0,
                fps=10.0,
                frame_size=224,
            ),
        )
        params = cremad.Params(
            video=cremad.VideoParams(fps=1.0, frames=1, size=224),
            split=cremad.SplitParams(val_fraction=0.2, test_fraction=0.2),
        )
        clips = len(list((raw / "AudioWAV").glob("*.wav")))
        cremad.warm_up(params.audio)  # librosa's lazy imports, paid once by either path
        t_pre = timed(lambda: cremad.preprocess("bench", raw, params, h5, tmp / "report.json", workers=1))
        t_jpeg = timed(lambda: [extract_jpegs(v, frames / v.stem) for v in sorted((raw / "VideoFlash").iterdir())])
        train = load_split(h5, "train")
        norm = Normalizer.fit(train, "classification")
        ours = {
            mode: SplitTensors(open_split(h5, "train", mode), norm, torch.device("cpu"))
            for mode in ("memory", "stream")
        }
        epochs = {
            "reference": lambda seed: reference_epoch(raw, frames, train.ids, train.labels, seed),
            "ours, memory": lambda seed: our_epoch(ours["memory"], seed),
            "ours, stream": lambda seed: our_epoch(ours["stream"], seed),
        }
        times: dict[str, list[float]] = {k: [] for k in epochs}
        kinds = list(epochs)
        for r in range(reps):
            for kind in kinds[r % len(kinds) :] + kinds[: r % len(kinds)]:
                times[kind].append(timed(lambda: epochs[kind](r)))  # noqa: B023 (called at once)
        ref = median(times["reference"])
        rows = [["reference (decode + STFT + JPEG every epoch)", ref, len(train) / ref, 1.0, "-"]]
        for kind in kinds[1:]:
            t = median(times[kind])
            rows.append([kind, t, len(train) / t, ref / t, "yes" if ref / t >= TARGET else "no"])
        print(
            f"{clips} clips generated; train split {len(train)} clips, audio {train.inputs['audio'].shape[1:]}, "
            f"video {train.inputs['video'].shape[1:]}; median of {reps} interleaved epochs.\n"
        )
        print(table(["path", "epoch (s)", "clips/s", "reference / this", f">= {TARGET}x less"], rows))
        print("\nOne-time costs (all splits):\n")
        per_epoch_saving = ref - median(times["ours, memory"])
        print(
            table(
                ["step", "seconds", "epochs to pay back"],
                [
                    [
                        f"ours: preprocess {clips} clips once (1 worker)",
                        t_pre,
                        f"{t_pre / per_epoch_saving:.2f}" if per_epoch_saving > 0 else "never",
                    ],
                    [f"reference: JPEG extraction of {clips} clips once", t_jpeg, "-"],
                ],
            )
        )


if __name__ == "__main__":
    with recorded("data_path"):
        main()
