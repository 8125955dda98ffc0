"""What `precision: bf16` does to the demo's results, against fp32, through the project's real stages.

The demo (params.yaml's demo section, teacher epochs and taus by default, one seed; the knobs below
shrink it) is generated and preprocessed once; then, for each precision, the real stages run in this process:
train_teachers, score, train_student (joint and G2D) and evaluate. Printed: test accuracy of both
teachers and of each student (fused and per-modality branch), the stages' wall time, and bf16 minus
fp32. Which precision is faster depends on the CPU (bf16 kernels) or GPU; the metrics are what the
issue asks to measure. One seed: a difference is one run's, not a mean.

    python bench/precision.py [--quick] [--precisions fp32 bf16] [--teacher-epochs N] [--tau1 N --tau2 N]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from g2d.config.params import Params
from g2d.stages import evaluate, generate, preprocess, score, train_student, train_teachers

from common import bench_params, machine, recorded, table

METHODS = ("joint", "g2d")
MODALITIES = ("audio", "video")


def demo_params(args: argparse.Namespace, precision: str) -> Params:
    """params.yaml's demo with the clips, epochs and taus of `args`, one seed, on the CPU at `precision`."""
    return bench_params(
        precision=precision,
        methods=list(METHODS),
        tau1=args.tau1,
        tau2=args.tau2,
        teacher={"epochs": args.teacher_epochs},
        demo={"actors": args.actors, "sentences": args.sentences},
        datasets={"demo": {"raw_dir": str(args.raw_dir)}},
    )


def run_precision(args: argparse.Namespace, precision: str, h5: Path, out: Path) -> dict[str, Any]:
    """Teachers, scores, the students and their evaluation at `precision`; test accuracies and wall times."""
    params = demo_params(args, precision)
    tdir, scores = out / "teachers", out / "scores.h5"
    start = time.perf_counter()
    train_teachers.run(params, "demo", 0, h5, tdir, out / "resume")
    teachers_s = time.perf_counter() - start
    score.run(params, h5, tdir, scores, out / "teacher_metrics.json", out / "teacher_confidence.png")
    teacher_test = json.loads((out / "teacher_metrics.json").read_text())["test"]
    row: dict[str, Any] = {f"teacher {m}": teacher_test[m]["accuracy"] for m in MODALITIES}
    start = time.perf_counter()
    for method in METHODS:
        run = out / method
        train_student.run(
            params, "demo", method, 0, h5, scores, tdir, run / "student.pt", run / "log.json", out / "resume"
        )
        result = evaluate.run(params, h5, scores, run / "student.pt", run / "metrics.json")
        for output in ("fused", *MODALITIES):
            row[f"{method} {output}"] = result["test"][output]["accuracy"]
    row["teachers (s)"] = teachers_s
    row["students + evaluate (s)"] = time.perf_counter() - start
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a smoke run: tiny demo, 1 epoch each (not written)")
    parser.add_argument("--precisions", nargs="+", default=["fp32", "bf16"], choices=["fp32", "bf16", "fp16"])
    demo = bench_params()  # the defaults: params.yaml's demo, teachers and schedule (one seed)
    parser.add_argument("--actors", type=int, default=demo.generators["demo"].actors)
    parser.add_argument("--sentences", type=int, default=demo.generators["demo"].sentences)
    parser.add_argument("--teacher-epochs", type=int, default=demo.teacher.epochs)
    parser.add_argument("--tau1", type=int, default=demo.tau1)
    parser.add_argument("--tau2", type=int, default=demo.tau2)
    args = parser.parse_args()
    if args.quick:
        args.actors, args.sentences, args.teacher_epochs, args.tau1, args.tau2 = 4, 2, 1, 1, 1
    print(f"machine: {machine()}\n")
    with tempfile.TemporaryDirectory(prefix="g2d-bench-precision-") as tmp:
        root = Path(tmp)
        args.raw_dir = root / "raw"
        base = demo_params(args, "fp32")
        generate.run(base, "demo", args.raw_dir)
        h5 = root / "demo.h5"
        preprocess.run(base, "demo", h5, root / "demo.report.json")
        rows = {p: run_precision(args, p, h5, root / p) for p in args.precisions}
    clips = args.actors * args.sentences * 6
    print(
        f"Demo of {args.actors} actors x {args.sentences} sentences x 6 emotions ({clips} clips, split by "
        f"actor), seed 0, teachers {args.teacher_epochs} epochs, students tau = ({args.tau1}, {args.tau2}), "
        "params.yaml's other settings (SGD, batch 16, small CNNs, late fusion), device cpu. Test accuracy (%), "
        "checkpoints chosen on validation; wall time of the stages in this process (s):\n"
    )
    keys = list(next(iter(rows.values())))
    show = [[p, *(100 * r[k] if "(s)" not in k else r[k] for k in keys)] for p, r in rows.items()]
    if "fp32" in rows:
        for p in (p for p in rows if p != "fp32"):
            show.append(
                [f"{p} - fp32", *((100 if "(s)" not in k else 1) * (rows[p][k] - rows["fp32"][k]) for k in keys)]
            )
    print(table(["precision", *keys], show))
    print(
        "\n(teacher and branch accuracies: each model's own output on the test split; differences in points, and in "
        "seconds for the wall times)"
    )


if __name__ == "__main__":
    with recorded("precision"):
        main()
