"""Snakemake and DVC are two front ends of one DAG declared in g2d.pipeline: dvc.yaml is its generated
output, and the rules Snakemake builds (read back from a dry run) have its inputs, outputs, logs and
commands; every stage depends on the code it runs, and on no param that only changes speed."""

from __future__ import annotations

import ast
import dataclasses
import re
from pathlib import Path

import pytest
import yaml

from g2d import dvc_yaml, pipeline
from g2d.config.params import deep_merge, load_params, params_from_dict, read_yaml
from g2d.datasets import SOURCES
from g2d.rules import RuleParts

from dag_helpers import copy_project, run

ROOT = Path(__file__).resolve().parents[1]
DVC = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
# What a stage's code may import without declaring it (see the comment above pipeline.SRC).
PLUMBING = {"g2d", "g2d.cli", "g2d.errors", "g2d.pipeline", "g2d.registry", "g2d.datasets", "g2d.methods", "g2d.models"}


def test_dvc_yaml_is_generated_from_the_pipeline():
    changes = dvc_yaml.diff(ROOT / "dvc.yaml")
    assert not changes, f"dvc.yaml differs from what src/g2d/pipeline.py gives: run `{dvc_yaml.COMMAND}`\n{changes}"


def test_g2d_dvc_yaml_writes_and_checks(tmp_path, capsys):
    from g2d.cli import main

    out = tmp_path / "dvc.yaml"
    assert main(["dvc-yaml", "--out", str(out), "--check"]) == 1  # missing
    assert main(["dvc-yaml", "--out", str(out)]) == 0
    assert out.read_text() == (ROOT / "dvc.yaml").read_text()
    assert main(["dvc-yaml", "--out", str(out), "--check"]) == 0
    out.write_text(out.read_text().replace("      - tau1\n", "", 1))
    capsys.readouterr()
    assert main(["dvc-yaml", "--out", str(out), "--check"]) == 1
    assert "+      - tau1" in capsys.readouterr().err  # the diff says what regenerating adds back


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
        # a dataset's source: every registered source's code (DVC cannot look it up from `source`)
        code = [
            p.format(source_module=m) if "{source_module}" in p else p
            for p in spec.code_paths
            for m in (sorted(pipeline.source_modules().values()) if "{source_module}" in p else [None])
        ]
        assert deps[len(deps) - len(code) :] == code, spec.name
        data = deps[: len(deps) - len(code)]
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
# Resolved against this checkout's src/ (not whichever g2d is installed).


def _module_file(name: str) -> Path | None:
    """The file of g2d module `name` under ROOT/src: its .py file or its package's __init__.py."""
    base = ROOT / "src" / name.replace(".", "/")
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT / "src").with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """The g2d modules a file imports, anywhere in it (a function's own imports too; `from g2d.x import y`
    counts g2d.x.y if that is a module, else g2d.x), and the package of each (importing g2d.x.y runs
    g2d/x/__init__.py)."""
    package = _module_name(path) if path.name == "__init__.py" else _module_name(path).rpartition(".")[0]
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
            if base.startswith("g2d"):
                names.update(f"{base}.{a.name}" if _module_file(f"{base}.{a.name}") else base for a in node.names)
        elif isinstance(node, ast.Import):
            names.update(a.name for a in node.names if a.name.startswith("g2d"))
    return {".".join(n.split(".")[:i]) for n in names for i in range(1, n.count(".") + 2)}


# What loads a registered implementation by name, and the modules it may load.
def _loaders() -> dict[str, set[str]]:
    from g2d.methods import METHODS

    return {"get_method": {e.impl.partition(":")[0] for e in METHODS.values()}, "get_source": set(SOURCES.values())}


def _loads(path: Path) -> set[str]:
    """The registered modules a file may load by name (it calls a registry's loader)."""
    names = {n.id for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, ast.Name)}
    names |= {a.name for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, ast.ImportFrom) for a in n.names}
    return set().union(*(modules for loader, modules in _loaders().items() if loader in names))


def _plumbing(module: str) -> bool:
    """Validating params and naming things (see the comment above pipeline.SRC), and empty package inits."""
    if module in PLUMBING or module.startswith("g2d.config"):
        return True
    path = _module_file(module)
    return path is not None and path.name == "__init__.py" and not ast.parse(path.read_text()).body[1:]


def _files(spec: pipeline.Stage) -> list[Path]:
    """Every module of a stage's declared code; a dataset's source ({source_module}) as every source's."""
    out = []
    for template in spec.code_paths:
        for where in {template.format(source_module=m) for m in pipeline.source_modules().values()}:
            path = ROOT / where
            out += sorted(path.rglob("*.py")) if path.is_dir() else [path]
    return out


def test_every_declared_code_path_exists():
    for spec in pipeline.STAGES:
        for path in spec.code_paths:
            for where in {path.format(source_module=m) for m in pipeline.source_modules().values()}:
                assert (ROOT / where).exists(), f"g2d.pipeline, stage {spec.name}: {where} does not exist"


def test_a_source_module_is_its_registered_module():
    """pipeline.source_module gives the file (or package folder) of each source g2d.datasets.SOURCES names."""
    for name, module in SOURCES.items():
        where = ROOT / pipeline.SRC / pipeline.source_module(name)
        expected = _module_file(module)
        assert expected == (where / "__init__.py" if where.is_dir() else where), (name, where, expected)
    assert pipeline.source_module("cremad") == "datasets/cremad.py"
    assert pipeline.source_module("avmnist") == "datasets/avmnist"


def _undeclared(spec: pipeline.Stage) -> list[str]:
    """Each g2d module that a module of the stage's code imports (or loads by name from a registry) and
    that is neither among the stage's code nor plumbing (CLI, params, the DAG, the registries)."""
    files = _files(spec)
    declared = {p.resolve() for p in files}
    out = []
    for entry in files:
        for module in sorted(_imports(entry) | _loads(entry)):
            path = _module_file(module)
            if not _plumbing(module) and (path is None or path.resolve() not in declared):
                out.append(f"{entry.relative_to(ROOT)} imports {module}")
    return out


@pytest.mark.parametrize("spec", pipeline.STAGES, ids=lambda s: s.name)
def test_a_stage_declares_the_code_its_modules_import(spec):
    """A stage's declared code is closed under imports, so that a new import cannot leave it stale."""
    assert not _undeclared(spec), f"g2d.pipeline, stage {spec.name}: code not declared: {_undeclared(spec)}"


def test_the_import_check_finds_what_a_stage_leaves_out():
    student = pipeline.stage("train_student")
    without_types = dataclasses.replace(student, code=tuple(c for c in student.code if c != "types.py"))
    assert any(p.endswith("imports g2d.types") for p in _undeclared(without_types))
    # the methods are loaded by name (get_method), not imported
    without_methods = dataclasses.replace(
        student,
        code=tuple(c for c in student.code if c != "methods")
        + ("methods/__init__.py", "methods/losses.py", "methods/confidence.py"),
    )
    assert "src/g2d/training/student.py imports g2d.methods.g2d" in _undeclared(without_methods)


# ---- Snakemake ----


def rule_parts(overlay: dict) -> RuleParts:
    config = deep_merge(read_yaml(ROOT / "params.yaml"), overlay)
    return RuleParts(config, params_from_dict(config), root=ROOT)


AVMNIST = {"datasets": {"av": read_yaml(ROOT / "config/presets/avmnist-cpu.yaml")["datasets"]["avmnist"]}}


def test_preprocess_runs_its_own_source_code():
    parts = rule_parts(AVMNIST)
    demo, av = (parts.inputs("preprocess")({"dataset": d}) for d in ("demo", "av"))
    package = {p.relative_to(ROOT).as_posix() for p in (ROOT / pipeline.SRC / "datasets/avmnist").glob("*.py")}
    assert "src/g2d/datasets/cremad.py" in demo and not package & set(demo)
    assert package <= set(av) and "src/g2d/datasets/cremad.py" not in av
    assert av[0] == AVMNIST["datasets"]["av"]["raw_dir"] and demo[0] == pipeline.RAW_DEMO
    assert "src/g2d/transforms/audio.py" in av and "src/g2d/io/dataset_file.py" in av


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
    lists = {
        "dataset": list(params.datasets),
        "seed": params.seeds,
        "method": params.methods,
        "ablation": list(params.ablations),
    }
    values = dict(w)
    if "dataset" in w:
        dataset = params.datasets[w["dataset"]]
        source = _module_file(SOURCES[dataset.source])
        values.update(
            raw_dir=dataset.raw_dir,
            source=dataset.source,
            source_module=(source.parent if source.name == "__init__.py" else source)
            .relative_to(ROOT / pipeline.SRC)
            .as_posix(),
        )
    out = []
    for template in spec.deps + spec.code_paths:
        combos = [{}]
        for name in pipeline.placeholders(template):
            if name not in values:
                combos = [{**c, name: v} for c in combos for v in lists[name]]
        for c in combos:
            path = template.format(**values, **c)
            where = ROOT / path
            code_dir = where.is_dir() and path.startswith(pipeline.SRC)  # a data dep stays one path, made or not
            out += sorted(p.relative_to(ROOT).as_posix() for p in where.rglob("*.py")) if code_dir else [path]
    return list(dict.fromkeys(out))


def test_snakemake_builds_each_rule_from_the_pipeline(tmp_path):
    """A dry run of the shipped workflow, every method and ablation included: each job's inputs (data and
    code), outputs, log and command are those g2d.pipeline declares."""
    proj = copy_project(tmp_path / "proj")
    rules = set()
    for presets in (
        ["config/presets/tiny.yaml", "config/presets/ablations-tiny.yaml"],
        ["config/presets/tiny.yaml", "config/presets/misme-tiny.yaml"],  # the regression DAG and its demo generator
        ["config/presets/trimodal-tiny.yaml"],  # three modalities, the subsets ablation, its demo generator
    ):
        params = load_params([ROOT / "params.yaml", *(ROOT / p for p in presets)])
        dry = run(["snakemake", "-n", "-p", "--configfile", *presets], proj)
        jobs = [j for j in dry_run_jobs(dry.stdout + dry.stderr) if j["rule"] != "all"]
        rules |= {j["rule"] for j in jobs}
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
    assert rules == {s.name for s in pipeline.STAGES}


def test_snakemake_lint_passes(tmp_path):
    """`snakemake --lint` on the shipped workflow prints no lint at all."""
    proj = copy_project(tmp_path / "proj", preset=None)
    lint = run(["snakemake", "--lint"], proj, check=False)
    output = lint.stdout + lint.stderr
    assert lint.returncode == 0 and "Lints for" not in output, output
