"""The registries: a method or a fusion is one module plus one registry line, validating params never
imports torch, and the config, methods and training modules import each other without a cycle.

The toy method and fusion below are registered at test time only (monkeypatch), the way a new module
and its registry line would be: nothing else in g2d names them, yet params validate their sections,
the real engine trains them and a wrong section is refused naming its key.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from torch import nn

from g2d.config.schema import ConfigError, require
from g2d.methods import METHODS, MethodEntry, get_method
from g2d.methods.base import Method
from g2d.methods.losses import LossParts
from g2d.models import ENCODERS, FUSIONS, FusionEntry
from g2d.models.student import StudentOutput
from g2d.stages import evaluate, score, train_student, train_teachers
from g2d.training import checkpoint
from g2d.training.student import build_student
from g2d.types import Batch

from conftest import toy_params, write_toy_dataset

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "g2d"


# --- torch-free validation and an acyclic import graph ----------------------------------------


def test_validating_params_never_imports_torch():
    """`load_params`, `g2d check` and what Snakemake's parse step runs, on params.yaml and every preset,
    in a fresh interpreter: torch is never imported."""
    presets = sorted(str(p) for p in (ROOT / "config" / "presets").glob("*.yaml"))
    code = f"""
import sys, yaml
from g2d import pipeline
from g2d.cli import main
from g2d.config.params import deep_merge, load_params, params_from_dict
from g2d.datasets import get_source
base = {str(ROOT / "params.yaml")!r}
for preset in {presets!r}:
    load_params([base, preset])
    params = params_from_dict(deep_merge(yaml.safe_load(open(base)), yaml.safe_load(open(preset))))
    [get_source(ds.source) for ds in params.datasets.values()]
assert main(["check", "--params", base]) == 0
assert len(pipeline.STAGES) > 0
print(sorted(m for m in sys.modules if m == "torch" or m.startswith("torch.")))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]", out.stdout


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def run_time_nodes(tree: ast.AST):
    """Every node of a module but those under `if TYPE_CHECKING:` (imports for annotations only)."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            yield from (n for child in node.orelse for n in [child, *run_time_nodes(child)])
            continue
        yield node
        yield from run_time_nodes(node)


def import_graph() -> dict[str, set[str]]:
    """g2d module -> the g2d modules it imports at run time, anywhere in its body (inside functions too)."""
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        edges = set()
        for node in run_time_nodes(ast.parse(path.read_text())):
            targets = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [
                    f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in modules else node.module
                    for a in node.names
                ]
            edges.update(t for t in targets if t in modules and t != name)
        graph[name] = edges
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    return out


def test_no_import_cycle_and_config_is_torch_free():
    graph = import_graph()
    assert cycles(graph) == []
    assert "g2d.training.data" not in graph["g2d.methods.base"] and "g2d.types" in graph["g2d.methods.base"]
    reach, todo = set(), ["g2d.config.params"]
    while todo:
        for m in graph[todo.pop()] - reach:
            reach.add(m)
            todo.append(m)
    heavy = sorted(
        m
        for m in reach
        if m.startswith(("g2d.training", "g2d.stages"))
        or m in {"g2d.methods.base", "g2d.models.fusion", "g2d.models.encoders", "g2d.models.student"}
    )
    assert heavy == [], f"validation reaches torch code: {heavy}"


def test_every_registry_entry_loads_with_the_options_it_declares():
    for registry in (METHODS, FUSIONS, ENCODERS):
        for entry in registry.values():
            assert getattr(entry.load(), "Options", None) is entry.options
    with pytest.raises(TypeError, match=r"registry entry 'g2d.methods.ogm_ge:OGMGE': the registry gives options none"):
        MethodEntry("g2d.methods.ogm_ge:OGMGE").load()
    with pytest.raises(KeyError, match=r"unknown method 'magic'; available: joint, g2d"):
        get_method("magic")


def test_every_demo_generator_has_its_stage_its_command_and_its_documented_section():
    """A generator is one module plus its GENERATORS line: the stage, the CLI command and the parsing of
    its params section follow from the registry; params.yaml documents its defaults."""
    import yaml

    from g2d import pipeline
    from g2d.cli import COMMANDS
    from g2d.config.params import load_params
    from g2d.datasets import GENERATORS, get_generator

    shipped = yaml.safe_load((ROOT / "params.yaml").read_text())
    params = load_params([ROOT / "params.yaml"])
    for name in GENERATORS:
        module = get_generator(name)
        assert callable(module.generate) and params.generators[name] == module.Params(), name
        assert name in shipped and pipeline.stage(f"generate_{name}").params == (name,)
        assert f"generate-{name.replace('_', '-')}" in COMMANDS
    with pytest.raises(KeyError, match=r"unknown demo generator 'nope'; available: demo, misme_demo"):
        get_generator("nope")


# --- a method added as one module plus one registry line ---------------------------------------


@dataclass(frozen=True)
class ScaledOptions:
    """The toy method's knobs: its loss is the task loss times `scale`."""

    scale: float = 1.0

    def validate(self, where: str) -> None:
        require(self.scale > 0, f"{where}.scale", "must be positive")


class ScaledJoint(Method):
    """Joint training with a scaled loss: the smallest method with a knob."""

    name = "scaled"
    Options = ScaledOptions
    options: ScaledOptions

    def loss(self, out: StudentOutput, batch: Batch) -> LossParts:
        parts = super().loss(out, batch)
        return LossParts(total=parts.total * self.options.scale, task=parts.task, feat={}, logit={})


@dataclass(frozen=True)
class PoolOptions:
    """The toy fusion's knobs: fused logits are a soft maximum of the modalities' heads."""

    sharpness: float = 1.0

    def validate(self, where: str) -> None:
        require(self.sharpness > 0, f"{where}.sharpness", "must be positive")


class SoftMaxPool(nn.Module):
    """One linear head per modality; fused = logsumexp(sharpness * logits) / sharpness over modalities."""

    Options = PoolOptions

    def __init__(self, dims: Sequence[int], num_outputs: int, sharpness: float = 1.0) -> None:
        super().__init__()
        self.sharpness = sharpness
        self.heads = nn.ModuleList(nn.Linear(d, num_outputs) for d in dims)

    def forward(self, feats: Sequence[torch.Tensor]) -> tuple[torch.Tensor, list[torch.Tensor]]:
        per_mod = [head(f) for head, f in zip(self.heads, feats, strict=True)]
        return torch.logsumexp(self.sharpness * torch.stack(per_mod), dim=0) / self.sharpness, per_mod


@pytest.fixture
def plugins(monkeypatch):
    """The registry lines a new method and a new fusion would add."""
    monkeypatch.setitem(METHODS, "scaled", MethodEntry(f"{__name__}:ScaledJoint", ScaledOptions))
    monkeypatch.setitem(FUSIONS, "softmax_pool", FusionEntry(f"{__name__}:SoftMaxPool", PoolOptions))


@pytest.fixture(scope="module")
def toy_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("plugins")
    h5 = write_toy_dataset(tmp / "toy.h5", n={"train": 24, "val": 8, "test": 8})
    params = toy_params(teacher={"epochs": 1}, tau1=1, tau2=1)
    train_teachers.run(params, "toy", 0, h5, tmp / "teachers", tmp / "resume")
    score.run(params, h5, tmp / "teachers", tmp / "scores.h5", tmp / "tm.json", tmp / "c.png")
    return tmp, h5


def train(params, toy_run, method: str, out: Path) -> list[dict]:
    tmp, h5 = toy_run
    train_student.run(
        params,
        "toy",
        method,
        0,
        h5,
        tmp / "scores.h5",
        tmp / "teachers",
        out / "student.pt",
        out / "log.json",
        out / "resume",
    )
    return json.loads((out / "log.json").read_text())


def test_a_registered_method_validates_trains_and_has_its_section_checked(plugins, toy_run, tmp_path):
    params = toy_params(methods=["joint", "scaled"], scaled={"scale": 3.0}, tau1=1, tau2=1)
    assert params.method_options("scaled") == ScaledOptions(3.0)
    assert toy_params(methods=["scaled"]).method_options("scaled") == ScaledOptions()  # no section: the defaults
    log = train(params, toy_run, "scaled", tmp_path / "scaled")
    assert [r["epoch"] for r in log] == [1, 2]
    assert all(r["loss"] == pytest.approx(3.0 * r["loss_task"]) for r in log)  # the options reached the method
    variant = params.with_student_overrides({"scaled.scale": 0.5})
    assert variant.method_options("scaled") == ScaledOptions(0.5)
    for section, message in (
        ({"scale": -1}, r"scaled.scale: must be positive"),
        ({"bogus": 1}, r"scaled.bogus: unknown key; allowed keys here: scale"),
        ({"scale": "big"}, r"scaled.scale: expected a number"),
    ):
        with pytest.raises(ConfigError, match=message):
            toy_params(methods=["scaled"], scaled=section)
    with pytest.raises(ConfigError, match=r"scaled.scale: must be positive"):
        params.with_student_overrides({"scaled.scale": 0})


def test_an_unregistered_method_and_its_section_are_refused():
    with pytest.raises(ConfigError, match=r"methods\[1\]: unknown method 'scaled'; choose from joint, g2d"):
        toy_params(methods=["joint", "scaled"])
    with pytest.raises(ConfigError, match=r"scaled: unknown key; allowed keys here: .*ogm_ge"):
        toy_params(scaled={"scale": 2.0})


def test_a_registered_fusion_validates_trains_and_rebuilds_from_its_checkpoint(plugins, toy_run, tmp_path):
    params = toy_params(fusion="softmax_pool", softmax_pool={"sharpness": 4.0}, tau1=1, tau2=1)
    log = train(params, toy_run, "joint", tmp_path / "pool")
    assert log[-1]["loss"] < log[0]["loss"]
    state = checkpoint.load(tmp_path / "pool" / "student.pt")
    assert state["fusion"] == "softmax_pool" and state["fusion_options"] == {"sharpness": 4.0}
    assert build_student(state, torch.device("cpu")).fusion.sharpness == 4.0
    tmp, h5 = toy_run
    result = evaluate.run(params, h5, tmp / "scores.h5", tmp_path / "pool" / "student.pt", tmp_path / "m.json")
    assert set(result["test"]) == {"fused", "audio", "video"}
    with pytest.raises(ConfigError, match=r"softmax_pool.sharpness: must be positive"):
        toy_params(fusion="softmax_pool", softmax_pool={"sharpness": 0})
    with pytest.raises(ConfigError, match=r"softmax_pool.width: unknown key; allowed keys here: sharpness"):
        toy_params(fusion="softmax_pool", softmax_pool={"width": 2})


def test_a_section_name_may_not_shadow_a_core_key(monkeypatch):
    monkeypatch.setitem(METHODS, "lr_method", MethodEntry(f"{__name__}:ScaledJoint", ScaledOptions, section="lr"))
    with pytest.raises(ConfigError, match=r"lr: a method's or fusion's section has the name of a core params key"):
        toy_params()
