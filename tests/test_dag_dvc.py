"""The whole DAG through `dvc repro`, then `dvc exp run -S tau1=...` in a temporary git copy, then
one ablation added to params: only its stage and the report run."""

from __future__ import annotations

import json
import re

import pytest

from dag_helpers import copy_project, run

pytestmark = pytest.mark.slow


def ran_stages(output: str) -> set[str]:
    return set(re.findall(r"Running stage '([^']+)'", output))


def test_dvc_repro_then_experiment_reruns_only_student_side(tmp_path):
    proj = copy_project(tmp_path / "proj")
    run(["git", "init", "-q"], proj)
    run(["git", "add", "-A"], proj)
    run(["git", "commit", "-qm", "pipeline"], proj)

    first = run(["dvc", "repro"], proj)
    assert ran_stages(first.stdout) == {
        "generate_demo", "preprocess@demo", "train_teachers@demo-0", "score@demo-0", "train_student@demo-0-joint",
        "train_student@demo-0-g2d", "evaluate@demo-0-joint", "evaluate@demo-0-g2d", "report"}
    run(["git", "add", "-A"], proj)
    run(["git", "commit", "-qm", "baseline run"], proj)

    status = run(["dvc", "status"], proj)
    assert "up to date" in status.stdout

    exp = run(["dvc", "exp", "run", "-S", "tau1=2"], proj)
    assert ran_stages(exp.stdout) == {"train_student@demo-0-joint", "train_student@demo-0-g2d",
                                      "evaluate@demo-0-joint", "evaluate@demo-0-g2d", "report"}
    assert "Stage 'train_teachers@demo-0' didn't change, skipping" in exp.stdout

    shown = json.loads(run(["dvc", "exp", "show", "--json"], proj).stdout)
    assert shown, "dvc exp show lists the experiment"
    metrics = json.loads(run(["dvc", "metrics", "show", "--json"], proj).stdout)
    files = next(iter(metrics.values()))["data"]
    assert "reports/summary.json" in files and "runs/demo/seed0/g2d/metrics.json" in files
    plots = json.loads(run(["dvc", "plots", "show", "--json"], proj).stdout)
    assert any("reports/curves/demo/g2d" in k for k in plots["data"])
    log = json.loads((proj / "runs/demo/seed0/g2d/log.json").read_text())
    assert len(log) == 2 + 1  # tau1 + tau2 epochs after the experiment's change


    (tmp_path / "ablation.yaml").write_text(
        "ablations:\n  suppression: {over: smp.suppression, values: [partial, zero_grad], methods: [g2d]}\n")
    run(["g2d", "preset", str(tmp_path / "ablation.yaml")], proj)
    ablated = run(["dvc", "repro"], proj)
    assert ran_stages(ablated.stdout) == {"ablate@demo-0-suppression", "report"}
    assert "### Ablation suppression: test accuracy (%)" in (proj / "reports/report.md").read_text()
    summary = json.loads((proj / "reports/summary.json").read_text())["demo"]["ablations"]["suppression"]
    assert set(summary["variants"]) == {"partial", "zero_grad"}
    assert (proj / "runs/demo/seed0/ablations/suppression/partial/g2d/metrics.json").is_file()
