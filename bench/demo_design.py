"""Demo design benchmark: does a set of `demo:` knobs give the imbalance G2D is about?

For each design (a name and params overrides, from a YAML file or just the project's params.yaml),
runs the pipeline with Snakemake in a scratch copy of the project, the design as an overlay
(`snakemake --configfile design.yaml`, with methods joint and G2D and the seeds asked): the demo's
generation and preprocessing, then per seed teachers, scoring, joint and G2D students and their
evaluation (not the report); designs in parallel, each design's jobs in parallel. Prints per design,
as mean over seeds (test split, validation-chosen checkpoints): each teacher's accuracy and mean train
confidence (what SMP ranks on), and for joint and G2D the fused and per-modality accuracy. The regime
the demo must show: one teacher more confident on train but worse on test; under joint training the
other modality's branch far below its teacher; G2D above joint.

    python bench/demo_design.py                                # params.yaml as is, 3 seeds
    python bench/demo_design.py --designs my_designs.yaml --jobs 8 --threads 1
    python bench/demo_design.py --designs d.yaml --only coarse --seeds 0

A designs file maps names to overrides merged into params.yaml, e.g.
    louder_audio: {demo: {audio_snr_db: 10.0}}
    long: {tau1: 20, tau2: 20}
Each design's folder keeps its Snakemake output (snakemake.log) and every job's log (logs/).
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

from g2d import pipeline  # noqa: E402
from g2d.config.params import deep_merge, load_params, read_yaml  # noqa: E402

DATASET = "demo"
METHODS = ("joint", "g2d")
TORCH_STAGES = tuple(s.name for s in pipeline.STAGES if "seed" in s.wildcards)  # the ones --threads sets


def targets(seeds: list[int]) -> list[str]:
    """What a design needs: each seed's teacher metrics and each student's test metrics."""
    return [pipeline.fill(pipeline.TEACHER_METRICS, dataset=DATASET, seed=s) for s in seeds] + [
        pipeline.fill(pipeline.EVAL, dataset=DATASET, seed=s, method=m) for s in seeds for m in METHODS
    ]


def run_design(
    workdir: Path, overlay: dict[str, Any], seeds: list[int], cores: int, threads: int
) -> list[dict[str, Any]]:
    """One design through Snakemake in its own copy of the project (its code on PYTHONPATH); its
    metrics per seed. Snakemake's output goes to workdir/snakemake.log, shown if it fails."""
    pipeline.copy_project(ROOT, workdir)
    (workdir / "design.yaml").write_text(yaml.safe_dump(overlay, sort_keys=False))
    load_params([workdir / "params.yaml", workdir / "design.yaml"])  # a bad design fails here, naming the key
    env = {
        **os.environ,
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(workdir / "src"), os.environ.get("PYTHONPATH")])),
        "PYTHONUNBUFFERED": "1",
    }
    cmd = [
        sys.executable,
        "-m",
        "snakemake",
        *targets(seeds),
        "--cores",
        str(cores),
        "--configfile",
        "design.yaml",
        "--set-threads",
        *(f"{stage}={threads}" for stage in TORCH_STAGES),
    ]
    with open(workdir / "snakemake.log", "w") as log:
        done = subprocess.run(cmd, cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT)
    if done.returncode:
        tail = (workdir / "snakemake.log").read_text().splitlines()[-40:]
        raise RuntimeError(f"{' '.join(cmd[1:])} failed in {workdir}:\n" + "\n".join(tail))
    results = []
    for seed in seeds:
        files = {
            "teachers": pipeline.fill(pipeline.TEACHER_METRICS, dataset=DATASET, seed=seed),
            **{m: pipeline.fill(pipeline.EVAL, dataset=DATASET, seed=seed, method=m) for m in METHODS},
        }
        result = {name: json.loads((workdir / path).read_text()) for name, path in files.items()}
        print(
            f"{workdir.name} seed {seed}: teachers "
            + ", ".join(f"{m} {100 * v['accuracy']:.1f}" for m, v in result["teachers"]["test"].items())
            + "; "
            + "; ".join(
                f"{method} "
                + ", ".join(f"{part} {100 * v['accuracy']:.1f}" for part, v in result[method]["test"].items())
                for method in METHODS
            ),
            flush=True,
        )
        results.append(result)
    return results


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
    return {
        k: {"mean": statistics.fmean(v), "std": statistics.stdev(v) if len(v) > 1 else 0.0} for k, v in rows.items()
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--designs", type=Path, help="YAML: design name -> params overrides (default: params.yaml as is)")
    ap.add_argument("--only", nargs="*", help="run only these designs")
    ap.add_argument("--seeds", type=int, nargs="*", help="default: params' seeds")
    ap.add_argument("--jobs", type=int, default=1, help="jobs run at once, all designs together")
    ap.add_argument("--threads", type=int, default=2, help="torch threads per job")
    ap.add_argument("--workdir", type=Path, help="scratch folder (default: a temporary one)")
    ap.add_argument("--json", type=Path, help="also write the summaries here")
    args = ap.parse_args()

    base = read_yaml(ROOT / "params.yaml")
    designs = read_yaml(args.designs) if args.designs else {"params.yaml": {}}
    if args.only:
        designs = {k: v for k, v in designs.items() if k in args.only}
    seeds = args.seeds if args.seeds is not None else list(base["seeds"])
    root = args.workdir or Path(tempfile.mkdtemp(prefix="g2d-demo-design-"))
    overlays = {
        name: deep_merge(overrides or {}, {"methods": list(METHODS), "seeds": seeds})
        for name, overrides in designs.items()
    }
    at_once = max(1, min(args.jobs, len(overlays)))  # Snakemake runs, one per design, each with its share of jobs
    cores = max(1, args.jobs // at_once) * args.threads
    start = time.perf_counter()
    with ThreadPoolExecutor(at_once) as pool:
        futures = {
            n: pool.submit(run_design, root / n, overlay, seeds, cores, args.threads) for n, overlay in overlays.items()
        }
        results = {n: f.result() for n, f in futures.items()}
    summaries = {n: summarise(r) for n, r in results.items()}
    print(f"\n{len(overlays)} design(s) x seeds {seeds} in {time.perf_counter() - start:.0f} s (scratch: {root})")
    for name, summary in summaries.items():
        print(f"\n## {name}: {json.dumps(designs[name] or {})}")
        for key, stat in summary.items():
            print(f"  {key:<22} {stat['mean']:6.2f} ± {stat['std']:5.2f}")
    if args.json:
        args.json.write_text(
            json.dumps({"seeds": seeds, "designs": designs, "summaries": summaries, "runs": results}, indent=2)
        )


if __name__ == "__main__":
    main()
