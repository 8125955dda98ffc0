"""Peak resident memory of student training on a file of N and 4N samples, streamed and held in memory.

A synthetic dataset file (audio 1x96x96 float32, video 1x3x64x64 uint8: ~49 KB a sample) and a
teacher cache are written with the project's writers; the real train_student stage (G2D, one
epoch, batch 32, CPU) then runs in a fresh interpreter per measurement, so that getrusage's peak
is its own. Target: in streaming mode, peak memory grows < 20% from N to 4N samples. Memory mode is
shown for contrast (it holds the splits, so it grows with the file).

    python bench/train_memory.py [--quick] [--samples N]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from common import (
    bench_params,
    current_rss_mib,
    in_fresh_process,
    machine,
    peak_rss_mib,
    recorded,
    table,
    write_synthetic,
    write_synthetic_scores,
)

GROWTH_TARGET = 0.20
SHAPES = {"audio": ((1, 96, 96), "float32"), "video": ((1, 3, 64, 64), "uint8")}
CLASSES = 6
VAL = 64


def child(job: dict) -> None:
    """Train one student with the real stage and print peak memory (and memory before training) as JSON."""
    import torch

    from g2d.stages import train_student

    torch.set_num_threads(2)
    params = bench_params(tau1=1, tau2=0, batch_size=32, data={"loading": job["loading"], "workers": 0})
    before = current_rss_mib()
    out = Path(job["out"])
    train_student.run(
        params,
        "demo",
        "g2d",
        0,
        Path(job["data"]),
        Path(job["scores"]),
        out / "teachers",
        out / "student.pt",
        out / "log.json",
        out / "resume",
    )
    print(json.dumps({"before": before, **peak_rss_mib()}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="N = 200 samples instead of 400")
    parser.add_argument("--samples", type=int, default=None, help="N, the smaller file's train samples")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(json.loads(args.child))
        return
    n = args.samples or (200 if args.quick else 400)
    print(f"machine: {machine()}\n")
    rows, peaks = [], {}
    with tempfile.TemporaryDirectory(prefix="g2d-bench-") as tmp_name:
        tmp = Path(tmp_name)
        files = {}
        for label, size in (("N", n), ("4N", 4 * n)):
            counts = {"train": size, "val": VAL, "test": 8}
            h5 = write_synthetic(tmp / f"{label}.h5", SHAPES, counts, CLASSES)
            scores = write_synthetic_scores(tmp / f"{label}.scores.h5", counts, list(SHAPES), 64, CLASSES)
            files[label] = (h5, scores, size)
        for loading in ("stream", "memory"):
            for label, (h5, scores, size) in files.items():
                out = tmp / f"{loading}-{label}"
                res = in_fresh_process(
                    Path(__file__), {"loading": loading, "data": str(h5), "scores": str(scores), "out": str(out)}
                )
                peaks[(loading, label)] = res["self"]
                rows.append(
                    [
                        loading,
                        label,
                        size,
                        h5.stat().st_size / 2**20,
                        res["before"],
                        res["self"],
                        res["self"] - res["before"],
                    ]
                )
        print(
            table(
                [
                    "loading",
                    "file",
                    "train samples",
                    "file size (MiB)",
                    "RSS after imports (MiB)",
                    "peak RSS (MiB)",
                    "peak - after imports (MiB)",
                ],
                rows,
            )
        )
        print()
        figures = []
        for mode in ("stream", "memory"):
            growth = peaks[(mode, "4N")] / peaks[(mode, "N")] - 1
            met = ("yes" if growth < GROWTH_TARGET else "no") if mode == "stream" else "- (contrast)"
            figures.append(
                [
                    f"peak RSS growth N -> 4N, {mode}",
                    f"{100 * growth:+.1f}% ({peaks[(mode, '4N')] - peaks[(mode, 'N')]:+.0f} MiB)",
                    f"< {100 * GROWTH_TARGET:.0f}%" if mode == "stream" else "-",
                    met,
                ]
            )
        print(table(["figure", "value", "target", "met"], figures))


if __name__ == "__main__":
    with recorded("train_memory"):
        main()
