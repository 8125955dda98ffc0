"""VGGSound preprocessing at the paper preset on generated mp4 clips with sound: clips/s per worker count,
bytes stored per clip, peak memory, and what that means for the full dataset (199,467 clips).

Clips are written with PyAV (the library that reads them): 10 s, 640 x 360 at 25 fps, H.264 (x264
`veryfast`: B-frames and CABAC, as YouTube's streams have) with AAC stereo at 44.1 kHz, a texture
panning under a moving bar and a tone in noise. `--distinct` clips are encoded and hard-linked under
the CSV's names up to N (decoding cost does not depend on the name). Settings: config/presets/vggsound.yaml
(16 kHz, 10 s tiled, middle 5 s, STFT 256/128 -> 1 x 129 x 626 float32; 3 frames of 224 x 224 RGB).
`--workers` lists the worker counts to compare (1 and 2 by default, for 2-core machines). Each run is a
fresh interpreter (its own peak RSS) timed after the decoders' start-up (librosa's first STFT, PyAV's
import), as bench/preprocess.py does. The serial part, the main process appending rows to the HDF5 file
(and deflating frames, with compression), is timed on its own with a decoded clip's rows: it bounds the
clips/s of any number of workers.

    python bench/vggsound_preprocess.py [--quick] [--clips N] [--distinct K] [--workers 1,4,16]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from common import ROOT, in_fresh_process, machine, median, peak_rss_mib, recorded, table

FULL_CLIPS = 199_467
CORES = (8, 16, 32)
LABELS = ("dog barking", "people marching", "engine accelerating, revving, vroom", "cat purring")


def child(job: dict) -> None:
    """Preprocess one raw folder with the paper preset's params; print timings, sizes and peak memory."""
    from g2d.config.schema import parse
    from g2d.datasets import vggsound

    params = parse(vggsound.Params, job["params"], "preprocess")
    start = time.perf_counter()
    vggsound.warm_up(params.audio)
    startup = time.perf_counter() - start
    start = time.perf_counter()
    report = vggsound.preprocess("bench", job["raw"], params, job["out"], job["out"] + ".report.json", job["workers"])
    seconds = time.perf_counter() - start
    clips = sum(report["counts"].values())
    size = os.path.getsize(job["out"])
    print(json.dumps({"startup": startup, "seconds": seconds, "clips": clips, "bytes": size, **peak_rss_mib()}))


def writer_ceiling(tmp: Path, params: dict, clip: Path, rows: int = 64) -> float:
    """clips/s of the main process appending rows (one clip decoded once, appended again and again): the
    serial bound on any worker count."""
    from g2d.config.schema import parse
    from g2d.datasets import vggsound
    from g2d.io.dataset_file import DatasetMeta, DatasetWriter

    p = parse(vggsound.Params, params, "preprocess")
    job = vggsound.Job("c", "train", 0, clip, clip.stat().st_size, 0)
    sample = vggsound.process_clip(job, p.audio, p.video)
    assert isinstance(sample, vggsound.Sample), sample
    meta = DatasetMeta("w", "vggsound", "classification", ("audio", "video"), ("a", "b"))
    compression = {"video": p.compression} if p.compression else None
    start = time.perf_counter()
    with DatasetWriter(tmp / "writer.h5", meta, vggsound.sample_shapes(p), compression) as writer:
        for i in range(rows):
            for split in ("train", "val", "test"):
                writer.append(split, sample.arrays, 0, f"{split}{i}")
    return 3 * rows / (time.perf_counter() - start)


def encode_sources(folder: Path, distinct: int) -> list[Path]:
    """`distinct` full-length clips at YouTube's usual 360p."""
    from g2d.datasets.vggsound_synth import ClipSpec, write_clip

    return [
        write_clip(
            folder / f"source{k}.mp4",
            ClipSpec(f"s{k}", 0, LABELS[k % len(LABELS)], "train", 10.0, 25, 640, 360, "aac", "libx264", "veryfast"),
            seed=k,
        )
        for k in range(distinct)
    ]


def link_raw_folder(root: Path, n: int, sources: list[Path]) -> Path:
    """A raw folder: the CSV of n rows (1 in 4 test) and n clip files, hard links to `sources` in turn."""
    from g2d.datasets.vggsound import clip_file_name

    (root / "video").mkdir(parents=True)
    with open(root / "vggsound.csv", "w", encoding="utf-8", newline="") as fh:
        rows = csv.writer(fh)
        for i in range(n):
            youtube_id, start = f"clip{i:05d}", 10 * (i % 7)
            rows.writerow([youtube_id, start, LABELS[i % len(LABELS)], "test" if i % 4 == 3 else "train"])
            os.link(
                sources[i % len(sources)],
                root / "video" / clip_file_name("{youtube_id}_{start:06d}.mp4", youtube_id, start),
            )
    return root


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="N = 16 clips, one repetition")
    parser.add_argument("--clips", type=int, default=None, help="N (default 48)")
    parser.add_argument("--distinct", type=int, default=8, help="distinct clips encoded (default 8)")
    parser.add_argument("--workers", default="1,2", help="worker counts to compare, e.g. 1,4,16 (default 1,2)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(json.loads(args.child))
        return
    import yaml

    preset = yaml.safe_load((ROOT / "config/presets/vggsound.yaml").read_text())["datasets"]["vggsound"]["preprocess"]
    # The bench's CSV has 4 labels and a few clips each: any number of labels, and a quarter held out so that
    # validation is never empty; the rest is the paper preset.
    paper = {**preset, "num_classes": None, "split": {"val_fraction": 0.25, "seed": 0}}
    n = args.clips or (16 if args.quick else 48)
    counts = sorted({1, *(int(w) for w in args.workers.split(","))})
    print(f"machine: {machine()}\n")
    with tempfile.TemporaryDirectory(prefix="g2d-bench-vgg-") as tmp_name:
        tmp = Path(tmp_name)
        start = time.perf_counter()
        sources = encode_sources(tmp, args.distinct)
        clip_bytes = int(np.mean([p.stat().st_size for p in sources]))
        raw_small, raw_large = (
            link_raw_folder(tmp / "raw-n", n, sources),
            link_raw_folder(tmp / "raw-4n", 4 * n, sources),
        )
        print(f"encoded {args.distinct} clips in {time.perf_counter() - start:.0f} s", file=sys.stderr)
        most = max(counts)
        runs = [
            *[("N", w, "paper preset", paper) for w in counts],
            ("4N", most, "paper preset", paper),
            ("N", 1, "resume: false", {**paper, "resume": False}),
            ("N", 1, "compression: 1", {**paper, "compression": 1}),
        ]
        results = []
        for size, workers, _, params in runs:
            raw = raw_small if size == "N" else raw_large
            out = str(tmp / f"{size}-{workers}-{len(results)}.h5")
            results.append(
                in_fresh_process(Path(__file__), {"raw": str(raw), "out": out, "workers": workers, "params": params})
            )
            Path(out).unlink()
        rows = []
        for (size, workers, name, _), res in zip(runs, results):
            rows.append(
                [
                    size,
                    res["clips"],
                    workers,
                    name,
                    res["startup"],
                    res["seconds"],
                    res["clips"] / res["seconds"],
                    res["bytes"] / res["clips"] / 1e3,
                    res["self"],
                    res["children"] if workers > 1 else "-",
                ]
            )
        print(f"N = {n} clips; an encoded clip is {clip_bytes / 1e3:.0f} KB (10 s, 640 x 360, H.264 + AAC)\n")
        print(
            table(
                [
                    "clips",
                    "clips written",
                    "workers",
                    "params",
                    "start-up (s)",
                    "clips part (s)",
                    "clips/s",
                    "KB stored per clip",
                    "peak RSS main (MiB)",
                    "peak RSS of a worker (MiB)",
                ],
                rows,
            )
        )
        ceiling = median([writer_ceiling(tmp, paper, sources[0]) for _ in range(2)])
        ceiling_gz = median([writer_ceiling(tmp, {**paper, "compression": 1}, sources[0]) for _ in range(2)])
        by = {(r[0], r[2], r[3]): r for r in rows}
        single, widest, large = (
            by[("N", 1, "paper preset")],
            by[("N", most, "paper preset")],
            by[("4N", most, "paper preset")],
        )
        compressed = by[("N", 1, "compression: 1")]
        per_worker = single[6]
        efficiency = widest[6] / (most * per_worker)
        stored, stored_gz = single[7] * 1e3, compressed[7] * 1e3
        print()
        print(
            table(
                ["figure", "value"],
                [
                    ["clips/s, 1 worker", per_worker],
                    [f"clips/s, {most} workers (parallel efficiency)", f"{widest[6]:.3g} ({efficiency:.0%})"],
                    ["writer alone, main process: clips/s uncompressed / gzip 1", f"{ceiling:.0f} / {ceiling_gz:.0f}"],
                    ["peak RSS main, N -> 4N clips (MiB)", f"{widest[8]:.0f} -> {large[8]:.0f}"],
                    ["dataset file, full dataset (GB), uncompressed", FULL_CLIPS * stored / 1e9],
                    [
                        "dataset file, full dataset (GB), gzip 1 frames (synthetic frames: see docs)",
                        FULL_CLIPS * stored_gz / 1e9,
                    ],
                    ["peak disk while writing with resume (file + shards, GB)", 2 * FULL_CLIPS * stored / 1e9],
                ],
            )
        )
        print()
        print(f"Extrapolated to {FULL_CLIPS:,} clips at the paper preset, one worker per core: clips/s per worker")
        print(f"x cores, linear (ideal) or at the {most}-worker efficiency measured here; capped by the writer.\n")

        def hours(rate: float, cores: int, eff: float, cap: float) -> float:
            return FULL_CLIPS / min(rate * cores * eff, cap) / 3600

        print(
            table(
                ["cores", "hours, linear", f"hours, at {efficiency:.0%} efficiency", "hours, gzip 1 frames, linear"],
                [
                    [
                        cores,
                        hours(per_worker, cores, 1.0, ceiling),
                        hours(per_worker, cores, efficiency, ceiling),
                        hours(compressed[6], cores, 1.0, ceiling_gz),
                    ]
                    for cores in CORES
                ],
            )
        )


if __name__ == "__main__":
    with recorded("vggsound-preprocess"):
        main()
