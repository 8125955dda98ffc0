"""The regression DAG end to end on the tiny MIS-ME demo (config/presets/misme-tiny.yaml), through
Snakemake and through `dvc repro`: raw photos, YOLO boxes and xlsx sheets -> soil crops and
normalised features -> teachers, joint, G2D and MIS-ME -> a report with the Table-3 layout."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import pytest

from dag_helpers import copy_project, dvc_repro_in_new_repo, run

pytestmark = pytest.mark.slow
PRESET = "config/presets/misme-tiny.yaml"
METHODS = ("joint", "g2d", "misme")


def check_outputs(proj: Path) -> None:
    """The dataset file keeps the train-only normalisation; the report has Table 3's rows and columns."""
    with h5py.File(proj / "data/processed/misme.h5") as h5:
        assert h5.attrs["task"] == "regression"
        record = json.loads(h5.attrs["preprocessing"])["tabular_normalisation"]
    assert record["fitted_on"] == "train" and len(record["mean"]) == 8
    assert json.loads((proj / "data/processed/misme.report.json").read_text())["skipped"] == []
    report = (proj / "reports/report.md").read_text()
    table = report.split("### Table 3 layout", 1)[1].split("\n\n")[1].splitlines()
    assert table[0].split(" | ")[1:] == ["T^tabular (tabular only)", "T^image (image only)", *METHODS[:-1], "misme |"]
    assert [line.split(" | ")[0] for line in table[2:]] == ["| MAPE (%)", "| R²", "| RMSE", "| MAE"]
    assert "Undefined for joint, g2d, misme: feature widths differ" in report  # no shared space: no Figure 4
    summary = json.loads((proj / "reports/summary.json").read_text())["misme"]
    assert summary["metrics"] == ["mape", "r2", "rmse", "mae"] and set(summary["methods"]) == set(METHODS)


def test_regression_dag_through_snakemake(tmp_path):
    proj = copy_project(tmp_path / "proj", preset=PRESET)
    out = run(["snakemake", "--cores", "2"], proj)
    assert "generate_misme_demo" in out.stdout + out.stderr
    check_outputs(proj)


def test_regression_dag_through_dvc(tmp_path):
    proj = copy_project(tmp_path / "proj", preset=PRESET)
    assert dvc_repro_in_new_repo(proj) == {
        "generate_demo",  # DVC runs every stage of dvc.yaml; the CREMA-D demo is unused here
        "generate_misme_demo",
        "generate_trimodal_demo",  # unused here too
        "preprocess@misme",
        "train_teachers@misme-0",
        "score@misme-0",
        *(f"{stage}@misme-0-{m}" for stage in ("train_student", "evaluate") for m in METHODS),
        "report",
    }
    check_outputs(proj)
