"""The whole DAG through Snakemake on the tiny preset and its HTML report, which jobs a tau1 change
reruns (and that a change of `data` reruns none), then every method and every ablation
(config/presets/ablations-tiny.yaml) on the same teachers; then which jobs an edit of the code reruns."""

from __future__ import annotations

import base64
import json
import re

import pytest

from g2d.config.params import load_params

from dag_helpers import copy_project, run

pytestmark = pytest.mark.slow


def job_counts(output: str) -> dict[str, int]:
    """Parse the 'Job stats' table of a Snakemake run or dry run."""
    table = output.split("Job stats:", 1)[1]
    return {
        m.group(1): int(m.group(2))
        for m in re.finditer(r"^(\w+)\s+(\d+)\s*$", table, flags=re.M)
        if m.group(1) != "total"
    }


def report_files(html: str) -> dict[str, bytes]:
    """The files a Snakemake HTML report embeds (as base64 data URIs), by file name."""
    return {
        m.group(1): base64.b64decode(m.group(2))
        for m in re.finditer(r"data:[\w/+.-]+(?:;charset=[\w-]+)?;filename=([^;\"]+);base64,([A-Za-z0-9+/=]+)", html)
    }


def test_snakemake_runs_everything_then_only_the_student_side(tmp_path):
    proj = copy_project(tmp_path / "proj", preset=None)
    smk = ["snakemake", "--cores", "2", "--configfile", "config/presets/tiny.yaml"]
    first = run(smk, proj)
    assert job_counts(first.stderr + first.stdout) == {
        "generate_demo": 1,
        "preprocess": 1,
        "train_teachers": 1,
        "score": 1,
        "train_student": 2,
        "evaluate": 2,
        "report": 1,
        "all": 1,
    }
    summary = json.loads((proj / "reports/summary.json").read_text())
    assert set(summary["demo"]["methods"]) == {"joint", "g2d"}
    report = (proj / "reports/report.md").read_text()
    assert "| Multi (fused) |" in report
    assert "| audio encoder, linear probe | - | - |" in report and "| video encoder, linear probe | - | - |" in report
    assert summary["demo"]["weak_modality"] in ("audio", "video")
    assert "chosen as the modality joint training starves" in report  # joint is run: the starvation rule
    assert set(summary["demo"]["joint_branch_ratio"]) == {"audio", "video"}
    assert "| g2d | 1 (rank-1 modality alone), epochs 1-1 |" in report  # SMP's per-phase priorities
    shares = summary["demo"]["methods"]["g2d"]["smp_priority"]["1"]
    assert sum(s["mean"] for s in shares.values()) == pytest.approx(1.0)  # one modality per batch in phase 1
    assert "smp_priority" not in summary["demo"]["methods"]["joint"]
    assert (proj / "reports/curves/demo/g2d/video_acc.json").is_file()
    assert list((proj / "reports/figures").glob("*.png"))

    again = run(smk + ["-n"], proj)
    assert "Nothing to be done" in again.stdout + again.stderr
    assert "demo/seed0/g2d: test " in (proj / "logs/evaluate/demo-0-g2d.log").read_text()  # each job's output

    # Snakemake's HTML report carries the report's tables and figures, embedded in the one file
    run(smk + ["--report", "report.html"], proj)
    embedded = report_files((proj / "report.html").read_text())
    assert embedded["report.md"] == (proj / "reports/report.md").read_bytes()
    assert "| Multi (fused) |" in embedded["report.md"].decode()
    assert embedded["summary.json"] == (proj / "reports/summary.json").read_bytes()
    figures = {p.name for p in (proj / "reports/figures").glob("*.png")}
    assert figures and figures <= set(embedded)
    assert all(embedded[name].startswith(b"\x89PNG") for name in figures)

    # what only changes speed (loading mode, DataLoader and preprocessing workers) reruns nothing
    (proj / "speed.yaml").write_text(
        json.dumps(
            {
                "data": {"loading": "stream", "workers": 2, "memory_fraction": 0.1},
                "datasets": {"demo": {"preprocess": {"workers": 2}}},
            }
        )
    )
    speed = run(smk + ["speed.yaml", "-n"], proj)
    assert "Nothing to be done" in speed.stdout + speed.stderr

    changed = run(smk + ["-n", "--config", "tau1=2"], proj)
    assert job_counts(changed.stdout + changed.stderr) == {"train_student": 2, "evaluate": 2, "report": 1, "all": 1}

    # augmentation: turning it on retrains the teachers (fresh crops) and everything after them, never
    # the preprocessing; the bank's size is the score stage's and the students' business only
    for name, augment, rerun in (("on", {"kind": "views"}, {"train_teachers": 1}), ("bank", {"views": 3}, {})):
        (proj / f"augment-{name}.yaml").write_text(json.dumps({"datasets": {"demo": {"augment": augment}}}))
        changed = run(smk + [f"augment-{name}.yaml", "-n"], proj)
        assert job_counts(changed.stdout + changed.stderr) == {
            **rerun,
            "score": 1,
            "train_student": 2,
            "evaluate": 2,
            "report": 1,
            "all": 1,
        }, name

    with_ablations = smk[:-1] + ["config/presets/tiny.yaml", "config/presets/ablations-tiny.yaml"]
    ablations = run(with_ablations, proj)
    params = load_params(
        [proj / "params.yaml", proj / "config/presets/tiny.yaml", proj / "config/presets/ablations-tiny.yaml"]
    )
    new_methods = len(params.methods) - 2
    assert job_counts(ablations.stderr + ablations.stdout) == {
        "train_student": new_methods,
        "evaluate": new_methods,
        "ablate": len(params.ablations),
        "report": 1,
        "all": 1,
    }
    report = (proj / "reports/report.md").read_text()
    assert "| T^audio | T^video | " + " | ".join(params.methods) + " |" in report
    summary = json.loads((proj / "reports/summary.json").read_text())["demo"]["ablations"]
    assert set(summary) == set(params.ablations)
    for name, ablation in params.ablations.items():
        table = report.split(f"### Ablation {name}: test accuracy (%)", 1)[1].split("###", 1)[0]
        for method in ablation.methods:
            rows = [line for line in table.splitlines() if line.startswith(f"| {method} | ")]
            assert len(rows) == len(ablation.values), (name, method)
            for variant in ablation.overrides():
                assert set(summary[name]["variants"][variant]["methods"][method]) >= {"fused", "audio", "video"}

    student_side = {
        "train_student": len(params.methods),
        "evaluate": len(params.methods),
        "ablate": len(params.ablations),
        "report": 1,
        "all": 1,
    }
    changed = run(with_ablations + ["-n", "--config", "tau1=2"], proj)
    assert job_counts(changed.stdout + changed.stderr) == student_side

    # the code: another source's (AV-MNIST's) reruns nothing here; a method's module reruns the student
    # side only; a teacher stage's module the teachers onward; the CREMA-D source (which the demo is
    # written in) everything from the demo's raw files on
    with (proj / "src/g2d/datasets/avmnist/build.py").open("a") as module:
        module.write("\n# edited\n")
    edited = run(with_ablations + ["-n"], proj)
    assert "Nothing to be done" in edited.stdout + edited.stderr
    for path, stale in (
        ("methods/g2d.py", student_side),
        ("stages/train_teachers.py", {**student_side, "train_teachers": 1, "score": 1}),
        ("datasets/cremad.py", {**student_side, "train_teachers": 1, "score": 1, "preprocess": 1, "generate_demo": 1}),
    ):
        with (proj / "src/g2d" / path).open("a") as module:
            module.write("\n# edited\n")
        edited = run(with_ablations + ["-n"], proj)
        assert job_counts(edited.stdout + edited.stderr) == stale, path
