"""Snakemake and DVC are two front ends of one DAG: same stages, files and params (g2d.pipeline)."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from g2d import pipeline

ROOT = Path(__file__).resolve().parents[1]
DVC = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
RULES = "\n".join(p.read_text() for p in sorted((ROOT / "workflow" / "rules").glob("*.smk")))


def dvc_template(text: str) -> str:
    """Turn DVC's ${item.x} / ${key} into the {x} placeholders of g2d.pipeline."""
    return re.sub(r"\$\{item\.(\w+)\}", r"{\1}", text.replace("${key}", "{dataset}"))


def _paths(entries) -> set[str]:
    out = set()
    for e in entries or []:
        out.add(dvc_template(next(iter(e)) if isinstance(e, dict) else e))
    return out


def test_same_stage_names():
    smk_rules = set(re.findall(r"^rule (\w+):", RULES, flags=re.M))
    assert set(DVC) == {s.name for s in pipeline.STAGES} == smk_rules


def test_dvc_declares_the_pipeline_outputs_params_and_deps():
    for spec in pipeline.STAGES:
        stage = DVC[spec.name].get("do", DVC[spec.name])
        assert _paths(stage.get("outs")) == set(spec.outs), spec.name
        assert _paths(stage.get("metrics")) == set(spec.metrics), spec.name
        params = {dvc_template(p) for p in stage.get("params", [])}
        assert params == set(spec.params), spec.name
        assert _paths(stage.get("deps")) == set(spec.deps), spec.name
        assert stage["cmd"].startswith("g2d " + spec.name.replace("_", "-")), spec.name


def test_snakemake_rules_use_the_pipeline_spec():
    for spec in pipeline.STAGES:
        body = re.search(rf"^rule {spec.name}:\n(.*?)(?=^rule |\Z)", RULES, flags=re.M | re.S).group(1)
        assert f'stage_params("{spec.name}")' in body, spec.name
        assert "{G2D} " + spec.name.replace("_", "-") in body, spec.name
        for path in spec.outs + spec.metrics:
            const = next(k for k, v in vars(pipeline).items() if v == path and k.isupper())
            assert f"pipeline.{const}" in body, (spec.name, path)


def test_every_stage_cli_exists():
    from g2d.cli import COMMANDS

    for spec in pipeline.STAGES:
        assert spec.name.replace("_", "-") in COMMANDS


def test_augment_reaches_exactly_the_stages_that_depend_on_it():
    """Teachers train on fresh crops (the crop keys, not the bank's size); the score stage draws and
    scores the bank and students train from it (all of it); preprocessing and evaluation never crop."""
    reads = {s.name: {p for p in s.params if p.startswith(pipeline.AUGMENT)} for s in pipeline.STAGES}
    assert reads["train_teachers"] == set(pipeline.CROP_PARAMS)
    assert not any(p.endswith((".views",)) for p in reads["train_teachers"])
    assert reads["score"] == reads["train_student"] == reads["ablate"] == {pipeline.AUGMENT}
    assert reads["preprocess"] == reads["evaluate"] == reads["generate_demo"] == set()
