"""Cluster execution with Snakemake's own executors: the SLURM and generic profiles parse, and a dry
run of the whole DAG with them succeeds without a scheduler; each job's resources come from params."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from g2d.config.params import load_params, params_from_dict
from g2d.config.schema import ConfigError

from conftest import ROOT

PROFILES = ROOT / "workflow" / "profiles"
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))


@pytest.mark.parametrize("name, executor", [("slurm", "slurm"), ("cluster-generic", "cluster-generic")])
def test_the_cluster_profiles_parse(name, executor):
    profile = yaml.safe_load((PROFILES / name / "config.yaml").read_text())
    assert profile["executor"] == executor and profile["jobs"] > 1
    local = yaml.safe_load((PROFILES / "default" / "config.yaml").read_text())
    assert profile["rerun-triggers"] == local["rerun-triggers"]  # the same rules for what reruns


def _dry_run(tmp_path: Path, profile: str, *extra: str) -> str:
    """`snakemake -n` with a cluster profile in a copy of the project (no sbatch or qsub exists here)."""
    work = tmp_path / "project"
    work.mkdir()
    for part in ("Snakefile", "params.yaml", "workflow", "config", "src"):
        source = ROOT / part
        (shutil.copytree if source.is_dir() else shutil.copy)(source, work / part)
    result = subprocess.run(
        [SNAKEMAKE, "-n", "--workflow-profile", str(work / "workflow/profiles" / profile), *extra],
        cwd=work,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout + result.stderr


def test_a_dry_run_of_the_whole_dag_with_the_slurm_profile(tmp_path):
    preset = ROOT / "config/presets/ablations-tiny.yaml"  # every stage, ablations included
    out = _dry_run(
        tmp_path,
        "slurm",
        "--configfile",
        str(ROOT / "params.yaml"),
        str(preset),
        "--config",
        'resources={"datasets": {"demo": {"train_teachers": {"runtime": 999}}}}',
    )
    for rule in ("generate_demo", "preprocess", "train_teachers", "score", "train_student", "evaluate", "ablate"):
        assert re.search(rf"rule {rule}:", out), rule
    jobs = dict(re.findall(r"rule (\w+):\n(?:    .*\n)*?    resources: (.*)", out))
    assert "runtime=999" in jobs["train_teachers"] and "gpu=1" in jobs["train_teachers"]  # per dataset
    assert "mem_mb=8000" in jobs["preprocess"] and "gpu=0" in jobs["preprocess"]


def test_a_dry_run_with_the_generic_cluster_profile(tmp_path):
    assert "This was a dry-run" in _dry_run(tmp_path, "cluster-generic")


def test_every_stage_has_documented_resources():
    from g2d import pipeline
    from g2d.config.params import STAGE_RESOURCES

    assert set(STAGE_RESOURCES) == {s.name for s in pipeline.STAGES}
    documented = yaml.safe_load((ROOT / "params.yaml").read_text())["resources"]["stages"]
    assert documented == STAGE_RESOURCES
    rules = "".join(p.read_text() for p in (ROOT / "workflow/rules").glob("*.smk"))
    for stage in pipeline.STAGES:  # every rule asks for its stage's resources
        assert f'**stage_resources("{stage.name}")' in rules, stage.name


def test_resources_are_validated_and_merged_per_dataset():
    params = load_params([ROOT / "params.yaml"])
    assert params.resources.job("preprocess").mem_mb == 8000
    base = yaml.safe_load((ROOT / "params.yaml").read_text())
    raised = {**base, "resources": {**base["resources"], "datasets": {"demo": {"preprocess": {"runtime": 1440}}}}}
    job = params_from_dict(raised).resources.job("preprocess", "demo")
    assert (job.runtime, job.mem_mb) == (1440, 8000)  # only the fields given replace the stage's
    with pytest.raises(ConfigError, match=r"resources.datasets.demo.preprocess.memory: unknown key"):
        params_from_dict({**raised, "resources": {"datasets": {"demo": {"preprocess": {"memory": 1}}}}})
    with pytest.raises(ConfigError, match=r"resources.stages.train: not a stage"):
        params_from_dict({**base, "resources": {"stages": {"train": {"gpus": 1}}}})
    with pytest.raises(ConfigError, match=r"resources.datasets.nope: no such dataset"):
        params_from_dict({**base, "resources": {"datasets": {"nope": {}}}})
