"""Snakemake and DVC in one checkout must not mix outputs: the project lock, and the dataset file's
recorded preprocessing checked by every stage that reads it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from g2d.cli import main
from g2d.config.params import load_params
from g2d.errors import RunError
from g2d.io.dataset_file import DatasetMeta, DatasetWriter, check_preprocessing, preprocessing_record
from g2d.io.project_lock import LockedError, frontend, project_lock
from g2d.rules import shell_prefix

from conftest import ROOT

SNAKEMAKE = {"G2D_FRONTEND": "snakemake"}
DVC = {"DVC_STAGE": "train_student@demo-0-g2d"}


def test_the_front_end_is_told_by_the_environment():
    assert frontend(SNAKEMAKE) == "snakemake" and frontend(DVC) == "dvc" and frontend({}) == "cli"
    assert "export G2D_FRONTEND=snakemake;" in shell_prefix(Path("p.yaml"))  # what every Snakemake job runs


def test_stages_of_one_front_end_run_together_and_another_front_end_is_refused(tmp_path):
    with project_lock(tmp_path, "train-student demo 0 g2d", SNAKEMAKE):
        with project_lock(tmp_path, "train-student demo 0 joint", SNAKEMAKE):  # parallel jobs of one run
            with pytest.raises(LockedError, match=r"snakemake is running stages in this checkout \(train-student demo"):
                with project_lock(tmp_path, "evaluate demo 0 g2d", DVC):
                    pass
        with pytest.raises(LockedError, match="running dvc here at the same time would mix outputs"):
            with project_lock(tmp_path, "evaluate demo 0 g2d", DVC):
                pass
    with project_lock(tmp_path, "evaluate demo 0 g2d", DVC):  # free once the Snakemake jobs ended
        assert json.loads((tmp_path / ".g2d" / "lock.json").read_text())["frontend"] == "dvc"
    assert not (tmp_path / ".g2d" / "lock.json").exists()


def test_a_killed_stage_does_not_hold_the_checkout(tmp_path):
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    with project_lock(tmp_path, "score demo 0", SNAKEMAKE):
        registry = tmp_path / ".g2d" / "lock.json"
        data = json.loads(registry.read_text())
        data["holders"][0]["pid"] = proc.pid  # as if the job had been killed -9
        registry.write_text(json.dumps(data))
        with project_lock(tmp_path, "score demo 0", DVC):
            pass


def test_a_stage_command_is_refused_while_another_front_end_runs(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    for key, value in DVC.items():
        monkeypatch.setenv(key, value)
    with project_lock(tmp_path, "train-teachers demo 0", SNAKEMAKE):
        code = main(
            ["evaluate", "--params", str(ROOT / "params.yaml"), "--dataset", "demo", "--seed", "0"]
            + ["--method", "g2d"]
        )
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("g2d evaluate: error: ") and "snakemake is running stages in this checkout" in err
    assert main(["check", "--params", str(ROOT / "params.yaml")]) == 0  # writes nothing: no lock


def _dataset_file(path: Path, record: dict) -> None:
    meta = DatasetMeta("demo", "cremad", "classification", ("x",), ("a", "b"), preprocessing=record)
    with DatasetWriter(path, meta, {"x": ((2,), "float32")}) as writer:
        for split in ("train", "val", "test"):
            writer.append(split, {"x": np.zeros(2, np.float32)}, 0, split)


def test_stages_refuse_a_dataset_file_made_with_other_preprocessing(tmp_path, monkeypatch, capsys):
    params = load_params([ROOT / "params.yaml"])
    ds = params.datasets["demo"]
    path = tmp_path / "demo.h5"
    _dataset_file(path, preprocessing_record("cremad", ds.preprocess))
    assert check_preprocessing(path, "demo", "cremad", ds.preprocess).dataset == "demo"
    other = ds.preprocess.__class__(**{**vars(ds.preprocess), "workers": 2})  # workers change nothing written
    check_preprocessing(path, "demo", "cremad", other)
    audio = ds.preprocess.audio.__class__(**{**vars(ds.preprocess.audio), "n_fft": 512})
    newer = ds.preprocess.__class__(**{**vars(ds.preprocess), "audio": audio})
    with pytest.raises(RunError, match=r"demo.h5: made with other preprocessing settings than params \(datasets.demo"):
        check_preprocessing(path, "demo", "cremad", newer)
    # through the command line, as both front ends run it
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data/processed").mkdir(parents=True)
    _dataset_file(tmp_path / "data/processed/demo.h5", preprocessing_record("cremad", newer))
    argv = ["train-teachers", "--params", str(ROOT / "params.yaml"), "--dataset", "demo", "--seed", "0"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "preprocess.audio: file has" in err and "Preprocess it again" in err
