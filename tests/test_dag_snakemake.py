"""The whole DAG through Snakemake on the tiny preset, then which jobs a tau1 change reruns."""

from __future__ import annotations

import json
import re

import pytest

from dag_helpers import copy_project, run

pytestmark = pytest.mark.slow


def job_counts(output: str) -> dict[str, int]:
    """Parse the 'Job stats' table of a Snakemake run or dry run."""
    table = output.split("Job stats:", 1)[1]
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)\s*$", table, flags=re.M)
            if m.group(1) != "total"}


def test_snakemake_runs_everything_then_only_the_student_side(tmp_path):
    proj = copy_project(tmp_path / "proj", preset=None)
    smk = ["snakemake", "--cores", "2", "--configfile", "config/presets/tiny.yaml"]
    first = run(smk, proj)
    assert job_counts(first.stderr + first.stdout) == {
        "generate_demo": 1, "preprocess": 1, "train_teachers": 1, "score": 1, "train_student": 2, "evaluate": 2,
        "report": 1, "all": 1}
    summary = json.loads((proj / "reports/summary.json").read_text())
    assert set(summary["demo"]["methods"]) == {"joint", "g2d"}
    assert "| Multi (fused) |" in (proj / "reports/report.md").read_text()
    assert (proj / "reports/curves/demo/g2d/video_acc.json").is_file()
    assert list((proj / "reports/figures").glob("*.png"))

    again = run(smk + ["-n"], proj)
    assert "Nothing to be done" in again.stdout + again.stderr

    changed = run(smk + ["-n", "--config", "tau1=2"], proj)
    assert job_counts(changed.stdout + changed.stderr) == {"train_student": 2, "evaluate": 2, "report": 1, "all": 1}
