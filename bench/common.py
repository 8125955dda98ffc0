"""What every benchmark shares: synthetic files in the project's schema, params, timing, tables, peak memory.

Benchmarks print figures; they assert nothing (timings depend on the machine and its load). Each
script runs from a clean checkout with the project installed: `python bench/<name>.py [--quick]`.
"""

from __future__ import annotations

import contextlib
import copy
import datetime
import io
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))  # this checkout's g2d, whatever is installed; children get it too

from g2d.config.params import Params, deep_merge, params_from_dict  # noqa: E402
from g2d.io.dataset_file import SPLITS, DatasetMeta, DatasetWriter  # noqa: E402
from g2d.io.score_cache import TeacherScores, write_scores  # noqa: E402

Shapes = Mapping[str, tuple[tuple[int, ...], str]]


def machine() -> str:
    """CPU model, cores and load now: timings mean little without them."""
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import torch

    load = " / ".join(f"{x:.2f}" for x in os.getloadavg())
    return (
        f"{model}, {os.cpu_count()} cores, torch {torch.__version__} with {torch.get_num_threads()} threads, "
        f"python {platform.python_version()}; load average (1/5/15 min) {load}"
    )


def write_synthetic(path: Path, shapes: Shapes, n: Mapping[str, int], classes: int, seed: int = 0) -> Path:
    """A dataset file of random inputs and labels with the project's writer (one row at a time)."""
    rng = np.random.default_rng(seed)
    meta = DatasetMeta(
        dataset=path.stem,
        source="synthetic",
        task="classification",
        modalities=tuple(shapes),
        class_names=tuple(f"c{i}" for i in range(classes)),
        preprocessing={"synthetic": True},
    )
    with DatasetWriter(path, meta, shapes) as writer:
        for split in SPLITS:
            for i in range(n[split]):
                sample = {
                    m: (
                        rng.integers(0, 256, size=shape, dtype=np.uint8)
                        if dtype == "uint8"
                        else rng.normal(size=shape).astype(np.float32)
                    )
                    for m, (shape, dtype) in shapes.items()
                }
                writer.append(split, sample, int(rng.integers(classes)), f"{split}{i}")
    return path


def synthetic_scores(
    rng: np.random.Generator, rows: Sequence[int], modalities: Sequence[str], feature_dim: int, classes: int
) -> dict[str, TeacherScores]:
    """Random teacher outputs of the cache's shapes for `rows` ((N,) for a split, (K, N) for its views)."""
    rows = tuple(rows)
    return {
        m: TeacherScores(
            features=rng.normal(size=(*rows, feature_dim)).astype(np.float32),
            logits=rng.normal(size=(*rows, classes)).astype(np.float32),
            confidence=rng.random(rows).astype(np.float32),
        )
        for m in modalities
    }


def write_synthetic_scores(
    path: Path, counts: Mapping[str, int], modalities: Sequence[str], feature_dim: int, classes: int, seed: int = 0
) -> Path:
    """A teacher cache of the right shapes (what the score stage writes), random values."""
    rng = np.random.default_rng(seed)
    scores = {split: synthetic_scores(rng, (n,), modalities, feature_dim, classes) for split, n in counts.items()}
    write_scores(path, scores, {"synthetic": True})
    return path


def bench_params(**overrides: Any) -> Params:
    """params.yaml (its `demo` dataset included) with `overrides` merged in (nested keys merge), on the CPU."""
    d = copy.deepcopy(yaml.safe_load((ROOT / "params.yaml").read_text()))
    return params_from_dict(deep_merge(d, {"seeds": [0], "device": "cpu", **overrides}))


RESULTS = ROOT / "docs" / "results"


class _Tee(io.TextIOBase):
    """Writes to the real stdout and keeps a copy."""

    def __init__(self, real: TextIO) -> None:
        self.real, self.copy = real, io.StringIO()

    def write(self, text: str) -> int:
        self.copy.write(text)
        return self.real.write(text)

    def flush(self) -> None:
        self.real.flush()


def commit() -> str:
    """This checkout's commit, marked when tracked files have changes."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + (" (with uncommitted changes)" if dirty else "")


@contextlib.contextmanager
def recorded(name: str, write: bool | None = None) -> Iterator[None]:
    """Print as usual and also write what was printed to docs/results/<name>.md, headed by the date, commit
    and command: result tables are written by the program that measured them, never pasted by hand.

    `write` defaults to: a full run (no --quick, not a --child process); a failed run writes nothing.
    """
    if write is None:
        write = not {"--quick", "--child"} & set(sys.argv[1:])
    tee = _Tee(sys.stdout)
    with contextlib.redirect_stdout(tee):  # type: ignore[type-var]
        yield
    if write:
        from g2d.io.atomic import write_text

        command = " ".join(["python", str(Path(sys.argv[0]).resolve().relative_to(ROOT)), *sys.argv[1:]])
        head = [
            f"# {name}",
            "",
            f"Written by `{command}` on {datetime.date.today().isoformat()}, commit {commit()}.",
            "The figures depend on the machine (its CPU model and load, named below): they reproduce only on the "
            "same machine.",
            "",
        ]
        write_text(RESULTS / f"{name}.md", "\n".join(head) + "\n" + tee.copy.getvalue())
        print(f"written to {(RESULTS / f'{name}.md').relative_to(ROOT)}", file=sys.stderr)


def timed(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A markdown table (what docs/results/<bench>.md keeps)."""
    cells = [[str(c) for c in headers]] + [[f"{c:.3g}" if isinstance(c, float) else str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    line = lambda r: "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |"  # noqa: E731
    return "\n".join(
        [line(cells[0]), "|" + "|".join("-" * (w + 2) for w in widths) + "|"] + [line(r) for r in cells[1:]]
    )


def peak_rss_mib() -> dict[str, float]:
    """Peak resident memory (MiB) of this process, and the largest of its finished children's.

    This process's peak is VmHWM, not getrusage: Linux folds the parent's peak into ru_maxrss at
    exec, so a fresh interpreter would report at least its launcher's memory. Forked children
    (worker processes, no exec) start from their resident size at the fork.
    """
    scale = 1 / 1024 if sys.platform != "darwin" else 1 / 2**20
    own = _status_mib("VmHWM")
    return {
        "self": own if own == own else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale,
        "children": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * scale,
    }


def _status_mib(field: str) -> float:
    """A memory field of /proc/self/status in MiB; NaN where there is no /proc."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def current_rss_mib() -> float:
    """Resident memory now (VmRSS), MiB."""
    return _status_mib("VmRSS")


def in_fresh_process(script: Path, job: Mapping[str, Any]) -> dict[str, Any]:
    """Run `script --child JOB` in a new interpreter, so that its peak memory is its own; return its JSON."""
    done = subprocess.run(
        [sys.executable, str(script), "--child", json.dumps(job)], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"{script.name} child failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def print_pipeline_results(name: str, table: str, wall: float | None, command: str | None) -> None:
    """A pipeline benchmark's result: machine, command, table and wall time, printed and, for a run that
    just measured them (`wall` given), written to docs/results/<name>.md; a table printed again from the
    last run (--no-run) is not a new result and writes nothing."""
    with recorded(name, write=wall is not None):
        print(f"Machine: {machine()}.\n")
        if command:
            print(f"The DAG ran as `{command}` (Snakemake reuses finished jobs).\n")
        print(table)
        if wall is not None:
            print(f"\nWall time of the pipeline run: {wall / 60:.1f} min ({os.cpu_count()} CPUs visible).")


def pipeline_main(
    doc: str, preset: Path, dataset: str, name: str, table: Callable[[dict[str, Any]], str], argv: list[str] | None
) -> int:
    """The command line of a benchmark that runs the DAG with one preset (--seeds, --cores, --no-run) and
    prints `table` of the report's summary of `dataset`, written to docs/results/<name>.md."""
    import argparse
    import json

    from quality import run_pipeline

    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", help="override the preset's seeds")
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--no-run", action="store_true", help="print the tables of the last run only")
    args = parser.parse_args(argv)
    wall, command = (None, None) if args.no_run else run_pipeline(args.seeds, args.cores, [preset])
    summary_path = ROOT / "reports/summary.json"
    if not summary_path.is_file() or dataset not in json.loads(summary_path.read_text()):
        print(f"{summary_path}: no {dataset} results; run without --no-run first", file=sys.stderr)
        return 1
    print_pipeline_results(name, table(json.loads(summary_path.read_text())), wall, command)
    return 0
