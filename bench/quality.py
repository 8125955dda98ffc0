"""Quality benchmark: G2D against joint training on AV-MNIST built from ../shared/data, over seeds.

Runs the real DAG (Snakemake, the AV-MNIST CPU preset) from this checkout, then prints one table
from the report stage's reports/summary.json: each teacher's test accuracy; for every method the
fused and per-modality test accuracy (mean ± std over seeds) and the weak modality's confidence
ratio (paper, Figure 6); and the wall time. The paper's AV-MNIST row (Table 1) is printed beside it.

    python bench/quality.py                       # the preset as is: 3 seeds
    python bench/quality.py --seeds 0 --cores 2   # a quicker look
    python bench/quality.py --diagnose            # also G2D with one part changed at a time
    python bench/quality.py --no-run              # only print the table of the last run

Snakemake reuses finished jobs: rerunning after a change reruns only what the change touches.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PRESET = ROOT / "config/presets/avmnist-cpu.yaml"
DIAGNOSE = ROOT / "config/presets/avmnist-diagnose.yaml"
SUMMARY = ROOT / "reports/summary.json"
DATASET = "avmnist"
# Table 1 of the paper, AV-MNIST, test accuracy (%).
PAPER = {"teachers": {"audio": 42.69, "image": 65.44},
         "joint": {"fused": 69.77, "audio": 16.05, "image": None},
         "g2d": {"fused": 73.03, "audio": 39.10, "image": None}}


def run_pipeline(seeds: list[int] | None, cores: int, presets: list[Path]) -> float:
    """Run the DAG with the presets overlaid in order; return the wall time in seconds."""
    snakemake = shutil.which("snakemake") or str(Path(sys.executable).with_name("snakemake"))
    cmd = [snakemake, "--cores", str(cores), "--configfile", *map(str, presets)]
    if seeds is not None:
        cmd += ["--config", f"seeds=[{','.join(map(str, seeds))}]"]
    print("$", " ".join(cmd), flush=True)
    start = time.perf_counter()
    # The jobs call `g2d`: find it beside this interpreter even when its venv is not activated.
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    subprocess.run(cmd, cwd=ROOT, check=True, env={**os.environ, "PATH": path, "PYTHONUNBUFFERED": "1"})
    return time.perf_counter() - start


def fmt(stat: dict[str, Any] | None) -> str:
    if stat is None:
        return "-"
    return f"{100 * stat['mean']:.2f} ± {100 * stat['std']:.2f}"


def paper(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def student_rows(label: str, entry: dict[str, Any], mods: list[str], weak: str,
                 paper_row: dict[str, float | None]) -> list[str]:
    """One student's rows: fused and per-modality accuracy, the weak modality's ratio on the fused row."""
    ratio = entry["confidence_ratio"][weak]
    rows = []
    for output in ["fused", *mods]:
        ratio_cell = f"{ratio['mean']:.3f} ± {ratio['std']:.3f}" if output == "fused" else ""
        rows.append(f"| {label} | {output} | {fmt(entry[output]['accuracy'])} | {paper(paper_row.get(output))} "
                    f"| {ratio_cell} |")
    return rows


def table(summary: dict[str, Any], wall_s: float | None) -> str:
    """The benchmark table in markdown: ours (mean ± std over seeds) beside the paper's figures."""
    s = summary[DATASET]
    mods, weak = s["modalities"], s["weak_modality"]
    n_seeds = len(next(iter(s["teachers"].values()))["accuracy"]["values"])
    lines = [f"AV-MNIST test accuracy (%), {n_seeds} seed(s); weak modality (least confident teacher): {weak}", "",
             "| model | output | ours | paper (Table 1) | weak-modality confidence ratio (Fig. 6) |",
             "|---|---|---|---|---|"]
    for m in mods:
        lines.append(f"| teacher {m} | {m} | {fmt(s['teachers'][m]['accuracy'])} | "
                     f"{paper(PAPER['teachers'].get(m))} | - |")
    for method, e in s["methods"].items():
        lines += student_rows(method, e, mods, weak, PAPER.get(method, {}))
    for name, ablation in s.get("ablations", {}).items():
        for variant in ablation["variants"].values():
            for method, e in variant["methods"].items():
                lines += student_rows(f"{method}, {name} {variant['label']}", e, mods, weak, {})
    if wall_s is not None:
        lines += ["", f"Wall time of the pipeline run: {wall_s / 60:.1f} min ({os.cpu_count()} CPUs visible)."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", help="override the preset's seeds")
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--preset", type=Path, default=PRESET)
    parser.add_argument("--diagnose", action="store_true",
                        help=f"also run G2D with one part changed at a time ({DIAGNOSE.relative_to(ROOT)})")
    parser.add_argument("--no-run", action="store_true", help="print the table of the last run only")
    args = parser.parse_args(argv)
    presets = [args.preset, *([DIAGNOSE] if args.diagnose else [])]
    wall = None if args.no_run else run_pipeline(args.seeds, args.cores, presets)
    if not SUMMARY.is_file():
        print(f"{SUMMARY}: missing; run without --no-run first", file=sys.stderr)
        return 1
    summary = json.loads(SUMMARY.read_text())
    if DATASET not in summary:
        print(f"{SUMMARY} holds no {DATASET} results (the last report was of {', '.join(summary)}); "
              "run without --no-run", file=sys.stderr)
        return 1
    print()
    print(table(summary, wall))
    return 0


if __name__ == "__main__":
    sys.exit(main())
