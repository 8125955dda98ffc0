"""MIS-ME benchmark: teachers, joint training, MIS-ME and G2D on the synthetic MIS-ME demo (regression).

Runs the real DAG (Snakemake with config/presets/misme-demo.yaml) from this checkout: the demo's raw
photos, YOLO boxes and weather sheets are generated, cut into soil crops and normalised, then every
seed trains the two teachers and the three students, each checkpoint chosen on validation. Prints
MAPE and R² (and RMSE, MAE) of each teacher and each student's fused output, mean ± std over seeds,
beside the paper's Table 3 (measured on the real MIS-ME data, which is not available here), then each
student's per-modality branches; writes the same to docs/results/misme-demo.md.

    python bench/misme.py                 # the preset as is: 3 seeds
    python bench/misme.py --seeds 0       # a quicker look
    python bench/misme.py --no-run        # only print (and write) the table of the last run
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
PRESET = ROOT / "config/presets/misme-demo.yaml"
DATASET = "misme"
# Table 3 of the paper (MIS-ME, test split): MAPE (%) and R².
PAPER: dict[str, tuple[float, float]] = {
    "teacher tabular": (15.49, 0.34),
    "teacher image": (8.22, 0.76),
    "joint": (14.62, 0.42),
    "misme": (7.52, 0.80),
    "g2d": (7.01, 0.82),
}
ORDER = ("joint", "misme", "g2d")


def fmt(stat: dict[str, Any] | None, digits: int = 2) -> str:
    return "-" if stat is None else f"{stat['mean']:.{digits}f} ± {stat['std']:.{digits}f}"


def row(label: str, metrics: dict[str, Any], paper: tuple[float, float] | None) -> str:
    ours = [fmt(metrics["mape"]), fmt(metrics["r2"]), fmt(metrics["rmse"], 4), fmt(metrics["mae"], 4)]
    theirs = [f"{paper[0]:.2f}", f"{paper[1]:.2f}"] if paper else ["-", "-"]
    return "| " + " | ".join([label, *ours, *theirs]) + " |"


def table(summary: dict[str, Any]) -> str:
    """Table 3 beside ours, then the students' branches."""
    s = summary[DATASET]
    n_seeds = len(next(iter(s["teachers"].values()))["mape"]["values"])
    methods = [m for m in ORDER if m in s["methods"]] + [m for m in s["methods"] if m not in ORDER]
    lines = [
        f"Synthetic MIS-ME demo, test split, mean ± std over {n_seeds} seed(s), checkpoints chosen on validation. "
        "RMSE and MAE in m³/m³. The paper's columns are its Table 3 on the real MIS-ME data.",
        "",
        "| model | MAPE (%) | R² | RMSE | MAE | paper MAPE | paper R² |",
        "|---|---|---|---|---|---|---|",
    ]
    for m in s["modalities"]:
        lines.append(row(f"teacher {m} ({m} only)", s["teachers"][m], PAPER.get(f"teacher {m}")))
    for method in methods:
        lines.append(row(f"{method}, fused", s["methods"][method]["fused"], PAPER.get(method)))
    lines += [
        "",
        f"Weak modality: **{s['weak_modality']}**, {s['weak_modality_rule']}.",
        "",
        "Each student's per-modality branches (the branch's own output) and the linear probe of each encoder, "
        "MAPE (%):",
        "",
        "| method | " + " | ".join(f"{m} branch | {m} probe" for m in s["modalities"]) + " |",
        "|---|" + "---|---|" * len(s["modalities"]),
    ]
    for method in methods:
        e = s["methods"][method]
        cells = [f"{fmt(e[m]['mape'])} | {fmt(e['probe'][m]['mape'])}" for m in s["modalities"]]
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from common import pipeline_main

    return pipeline_main(__doc__ or "", PRESET, DATASET, PRESET.stem, table, argv)


if __name__ == "__main__":
    sys.exit(main())
