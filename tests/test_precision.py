"""Mixed precision (`precision`): autocast really runs, losses stay float32, rules see unscaled gradients.

CUDA is not exercised here: bf16 autocast runs on the CPU, and fp16's loss scaling is checked with
torch's GradScaler on the CPU (fp16 itself is CUDA-only and refused elsewhere).
"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch

from g2d.config.schema import ConfigError
from g2d.io.score_cache import read_scores
from g2d.methods.base import Method
from g2d.models.student import StudentOutput
from g2d.stages import evaluate, score, train_student, train_teachers
from g2d.training.precision import FP32, Precision
from g2d.types import Batch

from conftest import COMMON, TinyStudent, tiny_batch, toy_params


class Recorder:
    """A global forward hook recording the dtype of every Conv2d and Linear output while installed."""

    def __init__(self) -> None:
        self.dtypes: set[torch.dtype] = set()

    def __call__(self, module: torch.nn.Module, args: tuple, output: object) -> None:
        if isinstance(module, (torch.nn.Conv2d, torch.nn.Linear)) and isinstance(output, torch.Tensor):
            self.dtypes.add(output.dtype)

    def __enter__(self) -> Recorder:
        self.handle = torch.nn.modules.module.register_module_forward_hook(self)
        return self

    def __exit__(self, *exc: object) -> None:
        self.handle.remove()


class GradientProbe(Method):
    """Joint training whose rule records the gradients it is given."""

    def modulate(self, model, batch: Batch, epoch: int, out: StudentOutput) -> dict[str, float]:
        self.seen = {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}
        return {}


def step_with(precision: Precision, batch: Batch | None = None) -> tuple[GradientProbe, TinyStudent, dict[str, float]]:
    model = TinyStudent()
    method = GradientProbe(**COMMON)
    method.precision = precision
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    logs, out = method.train_step(model, batch or tiny_batch(), optimizer, 1)
    assert out.fused.dtype == torch.float32
    return method, model, logs


def test_bf16_runs_the_forward_pass_under_autocast_and_the_loss_in_float32():
    with Recorder() as bf16:
        method, _, logs = step_with(Precision("bf16", "cpu"))
    with Recorder() as fp32:
        step_with(FP32)
    assert bf16.dtypes == {torch.bfloat16} and fp32.dtypes == {torch.float32}
    assert all(g.dtype == torch.float32 for g in method.seen.values())  # parameters and their grads stay fp32
    assert torch.isfinite(torch.tensor(logs["loss"]))


def test_rules_see_unscaled_gradients_under_loss_scaling():
    """fp16's path (scale, backward, unscale, rule, step) with a real GradScaler on the CPU: the rule gets
    the gradients of an unscaled run, and the step ends in the same parameters."""
    plain_method, plain_model, _ = step_with(FP32)
    scaled = Precision("fp32", "cpu")
    scaled.scaler = torch.amp.GradScaler("cpu", init_scale=2.0**10)
    method, model, _ = step_with(scaled)
    assert plain_method.seen.keys() == method.seen.keys()
    for name, grad in plain_method.seen.items():
        torch.testing.assert_close(method.seen[name], grad, rtol=0, atol=0)  # powers of two scale exactly
    for a, b in zip(plain_model.parameters(), model.parameters()):
        torch.testing.assert_close(a, b)
    assert scaled.state_dict()["scale"] == 2.0**10  # no overflow, no growth yet


def test_an_overflowing_scaled_step_is_skipped():
    scaled = Precision("fp32", "cpu")
    scaled.scaler = torch.amp.GradScaler("cpu", init_scale=2.0**100)
    batch = tiny_batch()
    batch.inputs = {m: x * 1e30 for m, x in batch.inputs.items()}  # finite loss, infinite once scaled
    before = copy.deepcopy(TinyStudent().state_dict())
    _, model, logs = step_with(scaled, batch)
    assert torch.isfinite(torch.tensor(logs["loss"]))
    for name, value in model.state_dict().items():
        torch.testing.assert_close(value, before[name])
    assert scaled.state_dict()["scale"] == 2.0**99  # the scaler backed off


def test_fp16_is_refused_without_cuda():
    with pytest.raises(ConfigError, match=r"precision: fp16 needs CUDA .* use bf16 or fp32 on the CPU"):
        Precision("fp16", "cpu")


def test_bf16_stages_train_score_and_evaluate_under_autocast(tmp_path: Path, toy_h5: Path):
    """The real stages with `precision: bf16`: teachers, the score cache, a G2D student and its evaluation
    all run their forward passes in bf16, and write float32 outputs and finite metrics."""
    params = toy_params(precision="bf16", tau1=1, tau2=1, teacher={"epochs": 1})
    tdir, scores = tmp_path / "teachers", tmp_path / "scores.h5"
    with Recorder() as seen:
        train_teachers.run(params, "toy", 0, toy_h5, tdir, tmp_path / "resume")
        score.run(params, toy_h5, tdir, scores, tmp_path / "tm.json", tmp_path / "tc.png")
        run = tmp_path / "g2d"
        train_student.run(params, "toy", "g2d", 0, toy_h5, scores, tdir, run / "s.pt", run / "l.json", run / "r")
        metrics = evaluate.run(params, toy_h5, scores, run / "s.pt", run / "m.json")
    assert seen.dtypes == {torch.bfloat16}
    assert all(0.0 <= metrics["test"][m]["accuracy"] <= 1.0 for m in ("fused", "audio", "video"))
    assert read_scores(scores, "train")["audio"].features.dtype.name == "float32"
