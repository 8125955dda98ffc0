"""Quality benchmark: G2D against joint training and baselines on AV-MNIST built from ../shared/data.

Runs the real DAG (Snakemake with the AV-MNIST CPU preset) from this checkout, then prints one table
from the report stage's reports/summary.json and writes it, with the machine, date, commit and
command, to docs/results/<preset>.md. For each teacher its test accuracy; for every method the
fused and per-modality test accuracy (each branch's own output, and a linear probe of its encoder),
mean ± std over seeds, each modality as a multiple of its teacher; the paper's AV-MNIST figures
(Table 1) beside them; and the issue's targets, checked on the weak modality the report picked
(the one joint training starves, measured on validation).

    python bench/quality.py                       # the preset as is: 3 seeds
    python bench/quality.py --seeds 0 --cores 2   # a quicker look
    python bench/quality.py --diagnose            # also G2D with one part changed at a time
    python bench/quality.py --no-run              # only print (and write) the table of the last run

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
# Table 1 of the paper, AV-MNIST, test accuracy (%); its "Video" row is the image modality.
PAPER = {
    "teachers": {"audio": 42.69, "image": 65.44},
    "joint": {"fused": 69.77, "audio": 16.05, "image": 55.83},
    "g2d": {"fused": 73.03, "audio": 39.10, "image": 65.09},
    "ogm_ge": {"fused": 71.08, "audio": 24.53, "image": 55.85},
    "umt": {"fused": 72.33, "audio": 31.55, "image": 64.08},
}
# The targets for a profile that shows the imbalance.
JOINT_STARVED_MAX = 0.6  # joint's weak-modality branch at most this multiple of its teacher
G2D_FUSED_GAIN = 0.02  # G2D's fused accuracy at least this much above joint's
G2D_WEAK_MIN = 0.9  # G2D's weak-modality branch at least this multiple of its teacher


def run_pipeline(seeds: list[int] | None, cores: int, presets: list[Path]) -> tuple[float, str]:
    """Run the DAG with the presets overlaid in order; return the wall time in seconds and the command."""
    snakemake = shutil.which("snakemake") or str(Path(sys.executable).with_name("snakemake"))
    cmd = [snakemake, "--cores", str(cores), "--configfile", *map(str, presets)]
    if seeds is not None:
        cmd += ["--config", f"seeds=[{','.join(map(str, seeds))}]"]
    shown = " ".join(["snakemake", *cmd[1:]]).replace(str(ROOT) + "/", "")
    print("$", shown, flush=True)
    start = time.perf_counter()
    # The jobs call `g2d`: find it beside this interpreter even when its venv is not activated.
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    subprocess.run(cmd, cwd=ROOT, check=True, env={**os.environ, "PATH": path, "PYTHONUNBUFFERED": "1"})
    return time.perf_counter() - start, shown


def fmt(stat: dict[str, Any] | None) -> str:
    return "-" if stat is None else f"{100 * stat['mean']:.2f} ± {100 * stat['std']:.2f}"


def times(stat: dict[str, Any], teacher: dict[str, Any]) -> str:
    return f"{stat['mean'] / teacher['mean']:.2f}x" if teacher["mean"] > 0 else "-"


def paper(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def student_rows(
    label: str, entry: dict[str, Any], mods: list[str], teachers: dict[str, Any], paper_row: dict[str, float | None]
) -> list[str]:
    """One student's rows: fused, then each modality's branch and the linear probe of its encoder."""
    rows = [f"| {label} | fused | {fmt(entry['fused']['accuracy'])} | | {paper(paper_row.get('fused'))} |"]
    for m in mods:
        t = teachers[m]["accuracy"]
        branch, probe = entry[m]["accuracy"], entry["probe"][m]["accuracy"]
        rows.append(f"| {label} | {m} branch | {fmt(branch)} | {times(branch, t)} | {paper(paper_row.get(m))} |")
        rows.append(f"| {label} | {m} encoder, linear probe | {fmt(probe)} | {times(probe, t)} | - |")
    return rows


def targets(s: dict[str, Any]) -> list[str]:
    """The issue's three targets on the weak modality, each marked met or not (branch and probe)."""
    weak, methods = s["weak_modality"], s["methods"]
    if not {"joint", "g2d"} <= set(methods):
        return []
    t = s["teachers"][weak]["accuracy"]["mean"]
    joint_weak = methods["joint"][weak]["accuracy"]["mean"] / t
    gain = methods["g2d"]["fused"]["accuracy"]["mean"] - methods["joint"]["fused"]["accuracy"]["mean"]
    g2d_weak = methods["g2d"][weak]["accuracy"]["mean"] / t
    g2d_probe = methods["g2d"]["probe"][weak]["accuracy"]["mean"] / t

    def mark(ok: bool) -> str:
        return "met" if ok else "NOT met"

    return [
        "| target | measured | |",
        "|---|---|---|",
        f"| joint's {weak} branch <= {JOINT_STARVED_MAX}x its teacher | {joint_weak:.2f}x | "
        f"{mark(joint_weak <= JOINT_STARVED_MAX)} |",
        f"| G2D fused >= joint + {100 * G2D_FUSED_GAIN:.0f} points | {100 * gain:+.2f} points | "
        f"{mark(gain >= G2D_FUSED_GAIN)} |",
        f"| G2D's {weak} branch >= {G2D_WEAK_MIN}x its teacher | {g2d_weak:.2f}x | {mark(g2d_weak >= G2D_WEAK_MIN)} |",
        f"| G2D's {weak} encoder (linear probe) >= {G2D_WEAK_MIN}x its teacher | {g2d_probe:.2f}x | "
        f"{mark(g2d_probe >= G2D_WEAK_MIN)} |",
    ]


def table(summary: dict[str, Any]) -> str:
    """The benchmark table in markdown: ours (mean ± std over seeds) beside the paper's figures."""
    s = summary[DATASET]
    mods = s["modalities"]
    n_seeds = len(next(iter(s["teachers"].values()))["accuracy"]["values"])
    lines = [
        f"AV-MNIST, test accuracy (%), mean ± std over {n_seeds} seed(s), checkpoints chosen on validation.",
        "",
        f"Weak modality: **{s['weak_modality']}**, {s['weak_modality_rule']}.",
        "",
        "| model | output | ours | x teacher | paper (Table 1) |",
        "|---|---|---|---|---|",
    ]
    for m in mods:
        lines.append(
            f"| teacher {m} | {m} | {fmt(s['teachers'][m]['accuracy'])} | 1.00x | {paper(PAPER['teachers'].get(m))} |"
        )
    for method, e in s["methods"].items():
        lines += student_rows(method, e, mods, s["teachers"], PAPER.get(method, {}))
    for name, ablation in s.get("ablations", {}).items():
        for variant in ablation["variants"].values():
            for method, e in variant["methods"].items():
                lines += student_rows(f"{method}, {name} {variant['label']}", e, mods, s["teachers"], {})
    found = targets(s)
    if found:
        lines += ["", *found]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", help="override the preset's seeds")
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--preset", type=Path, default=PRESET)
    parser.add_argument(
        "--diagnose",
        action="store_true",
        help=f"also run G2D with one part changed at a time ({DIAGNOSE.relative_to(ROOT)})",
    )
    parser.add_argument("--no-run", action="store_true", help="print the table of the last run only")
    args = parser.parse_args(argv)
    presets = [args.preset, *([DIAGNOSE] if args.diagnose else [])]
    wall, command = (None, None) if args.no_run else run_pipeline(args.seeds, args.cores, presets)
    if not SUMMARY.is_file():
        print(f"{SUMMARY}: missing; run without --no-run first", file=sys.stderr)
        return 1
    summary = json.loads(SUMMARY.read_text())
    if DATASET not in summary:
        print(
            f"{SUMMARY} holds no {DATASET} results (the last report was of {', '.join(summary)}); run without --no-run",
            file=sys.stderr,
        )
        return 1
    sys.path.insert(0, str(ROOT / "bench"))
    sys.path.insert(0, str(ROOT / "src"))
    from common import print_pipeline_results

    name = f"{args.preset.stem}{'-diagnose' if args.diagnose else ''}"
    print_pipeline_results(name, table(summary), wall, command)
    return 0


if __name__ == "__main__":
    sys.exit(main())
