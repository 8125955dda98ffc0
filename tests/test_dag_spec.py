"""Snakemake and DVC are two front ends of one DAG declared in g2d.pipeline: dvc.yaml is its generated
output, and the rules Snakemake builds (read back from a dry run) have its inputs, outputs, logs and
commands; every stage depends on the code it runs, and on no param that only changes speed."""

from __future__ import annotations

import ast
import importlib.util
import re
from pathlib import Path

import pytest
import yaml

from dag_helpers import copy_project, run
from g2d import dvc_yaml, pipeline
from g2d.config.params import deep_merge, load_params, params_from_dict, read_yaml
from g2d.rules import RuleParts

ROOT = Path(__file__).resolve().parents[1]
DVC = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
# What a stage's code may import without declaring it (see the comment above pipeline.SRC).
PLUMBING = {"g2d", "g2d.cli", "g2d.pipeline", "g2d.datasets"}


def _plumbing(module: str) -> bool:
    return module in PLUMBING or module.startswith("g2d.config")


def test_dvc_yaml_is_generated_from_the_pipeline():
    changes = dvc_yaml.diff(ROOT / "dvc.yaml")
    assert not changes, f"dvc.yaml differs from what src/g2d/pipeline.py gives: run `{dvc_yaml.COMMAND}`\n{changes}"


def dvc_to_pipeline(text: str) -> str:
    """DVC's ${item.x} / ${key} as the {x} placeholders of g2d.pipeline."""
    return re.sub(r"\$\{item\.(\w+)\}", r"{\1}", text.replace("${key}", "{dataset}"))


def _paths(entries) -> list[str]:
    return [dvc_to_pipeline(next(iter(e)) if isinstance(e, dict) else e) for e in entries or []]


def test_dvc_yaml_declares_each_stage_of_the_pipeline():
    assert list(DVC) == [s.name for s in pipeline.STAGES]
    for spec in pipeline.STAGES:
        stage = DVC[spec.name].get("do", DVC[spec.name])
        assert dvc_to_pipeline(stage["cmd"]) == spec.command, spec.name
        assert _paths(stage.get("outs")) == list(spec.outs), spec.name
        assert _paths(stage.get("metrics")) == list(spec.metrics), spec.name
        assert [dvc_to_pipeline(p) for p in stage["params"]] == list(spec.params), spec.name
        deps = _paths(stage.get("deps"))
        assert deps[len(deps) - len(spec.code_paths):] == list(spec.code_paths), spec.name
        data = deps[:len(deps) - len(spec.code_paths)]
        assert data == (["runs"] if spec.name == "report" else list(spec.deps)), spec.name
        if spec.wildcards and spec.wildcards != ("dataset",):
            assert DVC[spec.name]["matrix"] == {w: "${" + pipeline.WILDCARDS[w] + "}" for w in spec.wildcards}


def test_every_stage_cli_exists():
    from g2d.cli import COMMANDS

    for spec in pipeline.STAGES:
        assert spec.command.split()[1] in COMMANDS


def test_augment_reaches_exactly_the_stages_that_depend_on_it():
    """Teachers train on fresh crops (the crop keys, not the bank's size); the score stage draws and
    scores the bank and students train from it (all of it); preprocessing and evaluation never crop."""
    reads = {s.name: {p for p in s.params if p.startswith(pipeline.AUGMENT)} for s in pipeline.STAGES}
    assert reads["train_teachers"] == set(pipeline.CROP_PARAMS)
    assert not any(p.endswith((".views",)) for p in reads["train_teachers"])
    assert reads["score"] == reads["train_student"] == reads["ablate"] == {pipeline.AUGMENT}
    assert reads["preprocess"] == reads["evaluate"] == reads["generate_demo"] == set()


def test_no_stage_reads_a_param_that_only_changes_speed():
    for spec in pipeline.STAGES:
        for key in spec.params:
            for speed in pipeline.SPEED_ONLY:
                assert key != speed and not key.startswith(speed + "."), (spec.name, key)


# ---- code deps ----

def _module_file(name: str) -> Path | None:
    spec = importlib.util.find_spec(name)
    return Path(spec.origin) if spec and spec.origin and spec.origin.endswith(".py") else None


def _imports(path: Path) -> set[str]:
    """The g2d modules a file imports at module level (`from g2d.x import y` counts y if it is a module)."""
    names = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("g2d"):
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                names.add(sub if importlib.util.find_spec(node.module).submodule_search_locations is not None
                          and _module_file(sub) else node.module)
        elif isinstance(node, ast.Import):
            names.update(a.name for a in node.names if a.name.startswith("g2d"))
    return names


def test_every_declared_code_path_exists():
    for spec in pipeline.STAGES:
        for path in spec.code_paths:
            assert "{" in path or (ROOT / path).exists(), f"g2d.pipeline, stage {spec.name}: {path} does not exist"


def test_each_source_module_is_where_the_preprocess_stage_looks():
    """DVC names a dataset's source module by one template over `source`; every registered source must fit it."""
    from g2d.datasets import SOURCES

    for name, module in SOURCES.items():
        where = ROOT / pipeline.SRC / pipeline.SOURCE_MODULE.format(source=name)
        assert _module_file(module) == where, (
            f"source {name!r} is {_module_file(module) or module}, not {where}: dvc.yaml's preprocess stage "
            f"finds a source's code at {pipeline.SOURCE_MODULE} (g2d.pipeline.SOURCE_MODULE)")


@pytest.mark.parametrize("spec", pipeline.STAGES, ids=lambda s: s.name)
def test_a_stage_declares_the_code_its_modules_import(spec):
    """Every g2d module that a stage's own modules import is among its code deps (or is plumbing: CLI,
    params, the DAG, the source registry), so that a new import cannot leave a stage stale."""
    declared = {(ROOT / p).resolve() for p in spec.code_paths if "{" not in p}
    sources = [ROOT / pipeline.SRC / pipeline.SOURCE_MODULE.format(source=s) for s in ("cremad", "avmnist")]
    entries = [ROOT / p for p in spec.code_paths if "/stages/" in p] + (sources if spec.name == "preprocess" else [])
    for entry in entries:
        for module in _imports(entry):
            if _plumbing(module):
                continue
            path = _module_file(module).resolve()
            assert path in declared or any(d in path.parents for d in declared), (
                f"g2d.pipeline, stage {spec.name}: {entry.relative_to(ROOT)} imports {module} "
                f"({path.relative_to(ROOT)}), which is not in the stage's code")


# ---- Snakemake ----

def rule_parts(overlay: dict) -> RuleParts:
    config = deep_merge(read_yaml(ROOT / "params.yaml"), overlay)
    return RuleParts(config, params_from_dict(config), root=ROOT)


AVMNIST = {"datasets": {"av": read_yaml(ROOT / "config/presets/avmnist-cpu.yaml")["datasets"]["avmnist"]}}


def test_preprocess_runs_its_own_source_code():
    parts = rule_parts(AVMNIST)
    demo, av = (parts.inputs("preprocess")({"dataset": d}) for d in ("demo", "av"))
    assert "src/g2d/datasets/cremad.py" in demo and "src/g2d/datasets/avmnist.py" not in demo
    assert "src/g2d/datasets/avmnist.py" in av and "src/g2d/datasets/cremad.py" not in av
    assert av[0] == AVMNIST["datasets"]["av"]["raw_dir"] and demo[0] == pipeline.RAW_DEMO
    assert "src/g2d/transforms/audio.py" in av and "src/g2d/io/hdf5.py" in av


def test_student_stages_run_every_method_module_and_teachers_only_the_loss_and_confidence():
    parts = rule_parts({})
    w = {"dataset": "demo", "seed": "0", "method": "g2d"}
    methods = {p.relative_to(ROOT).as_posix() for p in (ROOT / pipeline.SRC / "methods").glob("*.py")}
    assert methods <= set(parts.inputs("train_student")(w)) and methods <= set(parts.inputs("evaluate")(w))
    teachers = {p for p in parts.inputs("train_teachers")(w) if "/methods/" in p}
    assert teachers == {"src/g2d/methods/losses.py", "src/g2d/methods/confidence.py"}
    assert not any("/methods/" in p for p in parts.inputs("preprocess")(w))


def test_speed_only_params_are_not_in_a_rules_params():
    slow = {"data": {"loading": "memory", "workers": 0}, "datasets": {"demo": {"preprocess": {"workers": 1}}}}
    fast = {"data": {"loading": "stream", "workers": 4}, "datasets": {"demo": {"preprocess": {"workers": 3}}}}
    w = {"dataset": "demo", "seed": "0", "method": "g2d", "ablation": "x"}
    for spec in pipeline.STAGES:
        values = [rule_parts(o).params(spec.name)({k: w[k] for k in spec.wildcards}) for o in (slow, fast)]
        assert values[0] == values[1], spec.name
    changed = rule_parts({"datasets": {"demo": {"preprocess": {"split": {"seed": 1}}}}}).params("preprocess")
    assert changed({"dataset": "demo"}) != rule_parts(slow).params("preprocess")({"dataset": "demo"})


def dry_run_jobs(output: str) -> list[dict[str, str]]:
    """Each job of a `snakemake -n -p` run: its rule, its fields (input, output, log, wildcards...), its command."""
    jobs = []
    for m in re.finditer(r"^(?:local)?rule (\w+):\n((?: {4}\w+: .*\n)*)(?:Shell command: (.*))?", output, flags=re.M):
        fields = dict(re.findall(r"^ {4}(\w+): (.*)$", m.group(2), flags=re.M))
        jobs.append({"rule": m.group(1), "shell": m.group(3) or "", **fields})
    return jobs


def expected_inputs(spec: pipeline.Stage, w: dict[str, str], params) -> list[str]:
    """pipeline.py's deps then code for one job: placeholders not among the job's wildcards over every value."""
    lists = {"dataset": list(params.datasets), "seed": params.seeds, "method": params.methods,
             "ablation": list(params.ablations)}
    values = dict(w)
    if "dataset" in w:
        values.update(raw_dir=params.datasets[w["dataset"]].raw_dir, source=params.datasets[w["dataset"]].source)
    out = []
    for template in spec.deps + spec.code_paths:
        combos = [{}]
        for name in pipeline.placeholders(template):
            if name not in values:
                combos = [{**c, name: v} for c in combos for v in lists[name]]
        for c in combos:
            path = template.format(**values, **c)
            where = ROOT / path
            out += sorted(p.relative_to(ROOT).as_posix() for p in where.rglob("*.py")) if where.is_dir() else [path]
    return list(dict.fromkeys(out))


def test_snakemake_builds_each_rule_from_the_pipeline(tmp_path):
    """A dry run of the shipped workflow, every method and ablation included: each job's inputs (data and
    code), outputs, log and command are those g2d.pipeline declares."""
    proj = copy_project(tmp_path / "proj")
    presets = ["config/presets/tiny.yaml", "config/presets/ablations-tiny.yaml"]
    params = load_params([ROOT / "params.yaml", *(ROOT / p for p in presets)])
    dry = run(["snakemake", "-n", "-p", "--configfile", *presets], proj)
    jobs = [j for j in dry_run_jobs(dry.stdout + dry.stderr) if j["rule"] != "all"]
    assert {j["rule"] for j in jobs} == {s.name for s in pipeline.STAGES}
    n = len(params.seeds)
    assert len([j for j in jobs if j["rule"] == "ablate"]) == n * len(params.ablations)
    assert len([j for j in jobs if j["rule"] == "train_student"]) == n * len(params.methods)
    for job in jobs:
        spec = pipeline.stage(job["rule"])
        w = dict(kv.split("=", 1) for kv in job["wildcards"].split(", ")) if "wildcards" in job else {}
        assert set(w) == set(spec.wildcards), job
        assert job["input"].split(", ") == expected_inputs(spec, w, params), job["rule"]
        assert job["output"].split(", ") == [t.format(**w) for t in spec.outs + spec.metrics], job["rule"]
        log = spec.log().format(**w)
        assert job["log"] == log, job["rule"]
        command = spec.command.replace("g2d ", "$G2D ", 1).format(**w)
        assert job["shell"].startswith(command + " ") and job["shell"].endswith(f" > {log} 2>&1"), job["shell"]


def test_snakemake_lint_passes(tmp_path):
    """`snakemake --lint` on the shipped workflow prints no lint at all."""
    proj = copy_project(tmp_path / "proj", preset=None)
    lint = run(["snakemake", "--lint"], proj, check=False)
    output = lint.stdout + lint.stderr
    assert lint.returncode == 0 and "Lints for" not in output, output
