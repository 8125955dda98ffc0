"""Demo design benchmark: does a set of `demo:` knobs give the imbalance G2D is about?

For each design (a name and params overrides, from a YAML file or just the project's params.yaml),
runs the real stages in a scratch folder: generate the demo, preprocess, then per seed teachers,
scoring, joint and G2D students and their evaluation, all through the `g2d` command line, designs
and seeds in parallel. Prints per design, as mean over seeds (test split, validation-chosen
checkpoints): each teacher's accuracy and mean train confidence (what SMP ranks on), and for joint
and G2D the fused and per-modality accuracy. The regime the demo must show: one teacher more
confident on train but worse on test; under joint training the other modality's branch far below its
teacher; G2D above joint.

    python bench/demo_design.py                                # params.yaml as is, 3 seeds
    python bench/demo_design.py --designs my_designs.yaml --jobs 8 --threads 1
    python bench/demo_design.py --designs d.yaml --only coarse --seeds 0

A designs file maps names to overrides merged into params.yaml, e.g.
    louder_audio: {demo: {audio_snr_db: 10.0}}
    long: {tau1: 20, tau2: 20}
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from g2d.config.params import deep_merge, load_params, read_yaml, write_params  # noqa: E402

DATASET = "demo"
METHODS = ("joint", "g2d")


def g2d(workdir: Path, threads: int, *args: str) -> None:
    """One `g2d` stage in `workdir`; its output goes to workdir/log.txt, which is shown if it fails."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": str(threads)}
    with open(workdir / "log.txt", "a") as log:
        log.write(f"$ g2d {' '.join(args)}\n")
        log.flush()
        done = subprocess.run([sys.executable, "-m", "g2d.cli", *args, "--threads", str(threads)], cwd=workdir,
                              env=env, stdout=log, stderr=subprocess.STDOUT)
    if done.returncode:
        tail = (workdir / "log.txt").read_text().splitlines()[-20:]
        raise RuntimeError(f"g2d {' '.join(args)} failed in {workdir}:\n" + "\n".join(tail))


def prepare(workdir: Path, params: dict[str, Any], threads: int) -> None:
    """A design's folder: its params.yaml (validated), its demo raw files and their HDF5 file."""
    workdir.mkdir(parents=True, exist_ok=True)
    write_params(workdir / "params.yaml", params)
    load_params([workdir / "params.yaml"])  # a bad design fails here, naming the key
    g2d(workdir, threads, "generate-demo", "--out", "data/raw/demo")
    g2d(workdir, threads, "preprocess", "--dataset", DATASET)


def run_seed(workdir: Path, seed: int, threads: int) -> dict[str, Any]:
    """Teachers, scores, joint and G2D students and their evaluation for one seed; their metrics."""
    base = ("--dataset", DATASET, "--seed", str(seed))
    g2d(workdir, threads, "train-teachers", *base)
    g2d(workdir, threads, "score", *base)
    for method in METHODS:
        g2d(workdir, threads, "train-student", *base, "--method", method)
        g2d(workdir, threads, "evaluate", *base, "--method", method)
    run = workdir / f"runs/{DATASET}/seed{seed}"
    result = {"teachers": json.loads((run / "teacher_metrics.json").read_text())}
    for method in METHODS:
        result[method] = json.loads((run / method / "metrics.json").read_text())
    print(f"{workdir.name} seed {seed}: teachers " + ", ".join(
        f"{m} {100 * v['accuracy']:.1f}" for m, v in result["teachers"]["test"].items()) + "; " + "; ".join(
        f"{method} " + ", ".join(f"{part} {100 * v['accuracy']:.1f}" for part, v in result[method]["test"].items())
        for method in METHODS), flush=True)
    return result


def summarise(results: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Mean over seeds of the figures that decide whether a design shows the imbalance."""
    rows: dict[str, list[float]] = {}

    def add(key: str, value: float) -> None:
        rows.setdefault(key, []).append(100 * value)

    for r in results:
        for m, split in r["teachers"]["test"].items():
            add(f"T^{m} test acc", split["accuracy"])
            add(f"T^{m} train conf", r["teachers"]["train"][m]["confidence"])
        for method in METHODS:
            for part, metrics in r[method]["test"].items():
                add(f"{method} {part}", metrics["accuracy"])
    return {k: {"mean": statistics.fmean(v), "std": statistics.stdev(v) if len(v) > 1 else 0.0}
            for k, v in rows.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--designs", type=Path, help="YAML: design name -> params overrides (default: params.yaml as is)")
    ap.add_argument("--only", nargs="*", help="run only these designs")
    ap.add_argument("--seeds", type=int, nargs="*", help="default: params' seeds")
    ap.add_argument("--jobs", type=int, default=1, help="stage chains run at once")
    ap.add_argument("--threads", type=int, default=2, help="torch threads per stage")
    ap.add_argument("--workdir", type=Path, help="scratch folder (default: a temporary one)")
    ap.add_argument("--json", type=Path, help="also write the summaries here")
    args = ap.parse_args()

    base = read_yaml(ROOT / "params.yaml")
    designs = read_yaml(args.designs) if args.designs else {"params.yaml": {}}
    if args.only:
        designs = {k: v for k, v in designs.items() if k in args.only}
    seeds = args.seeds if args.seeds is not None else list(base["seeds"])
    root = args.workdir or Path(tempfile.mkdtemp(prefix="g2d-demo-design-"))
    params = {name: deep_merge(deep_merge(base, overrides or {}), {"methods": list(METHODS), "seeds": seeds})
              for name, overrides in designs.items()}
    start = time.perf_counter()
    with ThreadPoolExecutor(args.jobs) as pool:
        list(pool.map(lambda n: prepare(root / n, params[n], args.threads), params))
        futures = {(n, s): pool.submit(run_seed, root / n, s, args.threads) for n in params for s in seeds}
        results = {n: [futures[n, s].result() for s in seeds] for n in params}
    summaries = {n: summarise(r) for n, r in results.items()}
    print(f"\n{len(params)} design(s) x seeds {seeds} in {time.perf_counter() - start:.0f} s (scratch: {root})")
    for name, summary in summaries.items():
        print(f"\n## {name}: {json.dumps(designs[name] or {})}")
        for key, stat in summary.items():
            print(f"  {key:<22} {stat['mean']:6.2f} ± {stat['std']:5.2f}")
    if args.json:
        args.json.write_text(json.dumps({"seeds": seeds, "designs": designs, "summaries": summaries,
                                         "runs": results}, indent=2))


if __name__ == "__main__":
    main()
