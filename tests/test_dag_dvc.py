"""The whole DAG through `dvc repro`, then a second clone that pulls every output from a DVC remote (a
local folder) and recomputes nothing, then `dvc exp run -S tau1=...` and a sweep of two queued
experiments (`dvc exp run --queue`, `dvc queue start`) in a temporary git copy, then
every method and every ablation added to params (ablations-tiny.yaml): only the new students, the
ablation stages and the report run, and the report has every table with every method. Along the way,
which stages a change of params (`data`: none) or an edit of the code makes stale."""

from __future__ import annotations

import json
import time

import pytest
import yaml

from dag_helpers import copy_project, ran_stages, run

pytestmark = pytest.mark.slow


def wait_for_queue(proj, timeout: float = 900.0) -> None:
    """Until DVC's queue has no queued or running experiment."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        status = run(["dvc", "queue", "status"], proj).stdout
        if "Queued" not in status and "Running" not in status:
            return
        time.sleep(3)
    raise AssertionError(f"the queue did not finish in {timeout:.0f} s:\n{status}")


def test_dvc_repro_then_experiment_reruns_only_student_side(tmp_path):
    proj = copy_project(tmp_path / "proj")
    run(["git", "init", "-q"], proj)
    run(["git", "add", "-A"], proj)
    run(["git", "commit", "-qm", "pipeline"], proj)

    first = run(["dvc", "repro"], proj)
    assert ran_stages(first.stdout) == {
        "generate_demo",
        "generate_misme_demo",  # every stage of dvc.yaml runs; no dataset of tiny.yaml reads their files
        "generate_trimodal_demo",
        "preprocess@demo",
        "train_teachers@demo-0",
        "score@demo-0",
        "train_student@demo-0-joint",
        "train_student@demo-0-g2d",
        "evaluate@demo-0-joint",
        "evaluate@demo-0-g2d",
        "report",
    }
    run(["git", "add", "-A"], proj)
    run(["git", "commit", "-qm", "baseline run"], proj)

    status = run(["dvc", "status"], proj)
    assert "up to date" in status.stdout

    # a shared cache: push to a remote (a local folder here); a second clone pulls everything, data,
    # teachers, scores, students, metrics and the report, and has nothing to recompute
    run(["dvc", "remote", "add", "-d", "shared", str(tmp_path / "remote")], proj)
    assert "files pushed" in run(["dvc", "push"], proj).stdout
    run(["git", "commit", "-qam", "remote"], proj)
    clone = tmp_path / "clone"
    run(["git", "clone", "-q", str(proj), str(clone)], tmp_path)
    run(["dvc", "pull"], clone)
    assert json.loads(run(["dvc", "status", "--json"], clone).stdout) == {}
    assert ran_stages(run(["dvc", "repro"], clone).stdout) == set()
    assert (clone / "runs/demo/seed0/teachers/audio.pt").read_bytes() == (
        proj / "runs/demo/seed0/teachers/audio.pt"
    ).read_bytes()

    # what only changes speed (loading mode, DataLoader workers) reruns nothing
    params = yaml.safe_load((proj / "params.yaml").read_text())
    params["data"] = {"loading": "stream", "workers": 2, "memory_fraction": 0.1}
    (proj / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    assert json.loads(run(["dvc", "status", "--json"], proj).stdout) == {}
    run(["git", "checkout", "params.yaml"], proj)

    # augmentation: the bank's size changes scoring and the students, turning it on the teachers too
    params = yaml.safe_load((proj / "params.yaml").read_text())
    after_teachers = {"score@demo-0", "train_student@demo-0-joint", "train_student@demo-0-g2d", "report"}
    for change, stale in (
        ({"views": 3}, after_teachers),
        ({"kind": "views"}, after_teachers | {"train_teachers@demo-0"}),
    ):
        params["datasets"]["demo"]["augment"].update(change)
        (proj / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
        assert set(json.loads(run(["dvc", "status", "--json"], proj).stdout)) == stale, change
    run(["git", "checkout", "params.yaml"], proj)

    exp = run(["dvc", "exp", "run", "-S", "tau1=2"], proj)
    assert ran_stages(exp.stdout) == {
        "train_student@demo-0-joint",
        "train_student@demo-0-g2d",
        "evaluate@demo-0-joint",
        "evaluate@demo-0-g2d",
        "report",
    }
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

    # a sweep through DVC's queue: two experiments queued, run by one worker, compared with exp show
    for tau1 in (1, 3):
        run(["dvc", "exp", "run", "--queue", "-S", f"tau1={tau1}"], proj)
    run(["dvc", "queue", "start", "-j", "1"], proj)
    wait_for_queue(proj)
    done = run(["dvc", "queue", "status"], proj).stdout
    assert done.count("Success") == 2, done
    swept = {
        exp["data"]["params"]["params.yaml"]["data"]["tau1"]: exp["data"]["metrics"]
        for row in json.loads(run(["dvc", "exp", "show", "--json"], proj).stdout)
        for branch in row.get("experiments") or []
        for exp in branch.get("revs", [])
        if exp.get("data", {}).get("params")
    }
    assert {1, 3} <= set(swept), swept
    assert all("reports/summary.json" in metrics for tau, metrics in swept.items() if tau in (1, 3))

    preset = proj / "config/presets/ablations-tiny.yaml"
    wanted = yaml.safe_load(preset.read_text())
    run(["g2d", "preset", str(preset)], proj)
    ablated = run(["dvc", "repro"], proj)
    new_methods = [m for m in wanted["methods"] if m not in ("joint", "g2d")]
    assert ran_stages(ablated.stdout) == {
        *(f"{stage}@demo-0-{m}" for stage in ("train_student", "evaluate") for m in new_methods),
        *(f"ablate@demo-0-{a}" for a in wanted["ablations"]),
        "report",
    }
    report = (proj / "reports/report.md").read_text()
    table1 = report.split("### Test accuracy", 1)[1].split("\n\n", 2)[1]
    assert all(f" {m} |" in table1.splitlines()[0] for m in wanted["methods"])
    summary = json.loads((proj / "reports/summary.json").read_text())["demo"]
    assert set(summary["methods"]) == set(wanted["methods"])
    for name, ablation in wanted["ablations"].items():
        assert f"### Ablation {name}: test accuracy (%)" in report
        assert len(summary["ablations"][name]["variants"]) == len(ablation["values"])
        for variant in summary["ablations"][name]["variants"].values():
            assert set(variant["methods"]) == set(ablation["methods"])
    assert (proj / "runs/demo/seed0/ablations/suppression/partial/g2d/metrics.json").is_file()

    # the code: a method's module makes the student-side stages stale (the report follows them on
    # `dvc repro`: `dvc status` lists the stages whose own deps changed); a teacher stage's module the
    # teachers; the CREMA-D source (which the demo is written in) the demo's generation and preprocessing;
    # another source (AV-MNIST) preprocessing too, as DVC cannot tell which source a dataset uses
    run(["git", "add", "-A"], proj)
    run(["git", "commit", "-qm", "ablations"], proj)
    students = {f"{stage}@demo-0-{m}" for stage in ("train_student", "evaluate") for m in wanted["methods"]}
    for path, stale in (
        ("methods/g2d.py", students | {f"ablate@demo-0-{a}" for a in wanted["ablations"]}),
        ("stages/train_teachers.py", {"train_teachers@demo-0"}),
        ("datasets/cremad.py", {"generate_demo", "preprocess@demo"}),
        ("datasets/avmnist/build.py", {"preprocess@demo"}),
    ):
        with (proj / "src/g2d" / path).open("a") as module:
            module.write("\n# edited\n")
        assert set(json.loads(run(["dvc", "status", "--json"], proj).stdout)) == stale, path
        run(["git", "checkout", "src"], proj)
