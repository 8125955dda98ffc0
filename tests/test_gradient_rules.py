"""Every gradient-scaling rule changes the parameter update under SGD with momentum, and the same
rules are (nearly) no-ops under Adam, which divides each step by a running RMS of the gradient.

Rules: OGM-GE's coefficient, AGM's coefficient, SMP's partial suppression and SMP's zero_grad. Each
step is compared with the same step with the coefficient forced to 1 (the joint method: the same
loss, no modulation), on identical models, with the optimizer the project builds from params. On the
first SGD step (momentum buffer = the gradient, no weight decay) an encoder's change is exactly its
coefficient times the joint change, so each test fails if its rule has no effect.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch

from g2d.methods.agm import AGM
from g2d.methods.base import Method
from g2d.methods.ogm_ge import OGMGE
from g2d.methods.options import AGMParams, OGMGEParams, SMPParams
from g2d.methods.smp import SMPGating, gate_gradients
from g2d.training.optim import build_optimizer
from g2d.types import Batch, TeacherBatch

from conftest import COMMON, MODS, TinyStudent, tiny_batch, toy_params

SGD = {"optimizer": "sgd", "lr": 0.1, "momentum": 0.9, "weight_decay": 0.0}
ADAM = {"optimizer": "adam", "lr": 0.01, "weight_decay": 0.0}
TEACHER = TeacherBatch(
    features={},
    logits={},
    confidence={"a": torch.tensor([0.9, 0.8, 0.9, 0.7]), "v": torch.tensor([0.2, 0.4, 0.3, 0.3])},
)


def float64(batch: Batch) -> Batch:
    """The batch in double precision, so that parameter changes compare to ~1e-12, not float32's ~1e-7."""
    return Batch(
        index=batch.index,
        inputs={m: x.double() for m, x in batch.inputs.items()},
        target=batch.target,
        teacher=batch.teacher,
    )


def encoder_change(
    method: Method, optimizer: dict[str, Any], epoch: int = 1
) -> tuple[dict[str, torch.Tensor], dict[str, float]]:
    """One train_step of `method` on a fresh TinyStudent (seed 0, two tensors per encoder, double
    precision): each encoder's parameter change, flattened, and the step's logs."""
    model, batch = TinyStudent("late", bias=True).double(), float64(tiny_batch(teacher=TEACHER))
    opt = build_optimizer(toy_params(**optimizer), model.parameters())
    before = {m: torch.cat([p.detach().reshape(-1) for p in model.encoder_parameters(m)]) for m in MODS}
    logs, _ = method.train_step(model, batch, opt, epoch)
    after = {m: torch.cat([p.detach().reshape(-1) for p in model.encoder_parameters(m)]) for m in MODS}
    return {m: after[m] - before[m] for m in MODS}, logs


def agm() -> AGM:
    """AGM after ten steps in which audio's score (its loss) ran higher than video's: audio is now ahead of
    its running balance, so this step slows audio (c ~ 0.45) and boosts video (c ~ 33)."""
    method = AGM(**COMMON, options=AGMParams(alpha=1.0))
    method.load_state_dict({"running": {"a": 2.0, "v": 0.5}, "steps": 10})
    return method


def smp(suppression: str) -> SMPGating:
    method = SMPGating(**COMMON, smp=SMPParams(suppression=suppression))
    method.setup(None)
    return method


RULES = {  # name -> (method factory, the log key of its coefficient for modality m)
    "ogm_ge": (lambda: OGMGE(**COMMON, options=OGMGEParams(alpha=1.0, ge=False)), "ogm_coeff_{}"),
    "agm": (agm, "agm_coeff_{}"),
    "smp_partial": (lambda: smp("partial"), "kappa_{}"),
    "smp_zero_grad": (lambda: smp("zero_grad"), "kappa_{}"),
}


@pytest.mark.parametrize("rule", RULES)
def test_coefficient_scales_the_first_sgd_momentum_step_exactly(rule):
    make, key = RULES[rule]
    joint, _ = encoder_change(Method(**COMMON), SGD)
    modulated, logs = encoder_change(make(), SGD)
    coeff = {m: logs[key.format(m)] for m in MODS}
    assert min(coeff.values()) < 0.9  # the rule acts on this batch
    for m in MODS:
        assert joint[m].abs().max() > 1e-4
        assert torch.allclose(modulated[m], coeff[m] * joint[m], atol=1e-12, rtol=1e-9), (m, coeff[m])
    weak = min(MODS, key=coeff.get)
    assert not torch.allclose(modulated[weak], joint[weak], atol=1e-6)


@pytest.mark.parametrize("rule", ["ogm_ge", "agm", "smp_partial"])
def test_a_positive_coefficient_barely_changes_the_first_adam_step(rule):
    """Adam's first step is lr * g / (|g| + eps), whatever positive constant multiplies g."""
    make, key = RULES[rule]
    joint, _ = encoder_change(Method(**COMMON), ADAM)
    modulated, logs = encoder_change(make(), ADAM)
    assert 0 < min(logs[key.format(m)] for m in MODS) < 0.9
    for m in MODS:
        assert torch.allclose(modulated[m], joint[m], atol=1e-6, rtol=1e-3)


def scaled_training(optimizer: dict[str, Any], c: float, steps: int = 5) -> torch.Tensor:
    """`steps` joint steps with encoder a's gradients multiplied by a constant c; a's total change."""
    model, batch = TinyStudent("late", bias=True).double(), float64(tiny_batch())
    opt = build_optimizer(toy_params(**optimizer), model.parameters())
    before = torch.cat([p.detach().reshape(-1) for p in model.encoder_parameters("a")])
    for _ in range(steps):
        opt.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(model(batch.inputs).fused, batch.target).backward()
        gate_gradients({"a": model.encoder_parameters("a")}, {"a": c})
        opt.step()
    return torch.cat([p.detach().reshape(-1) for p in model.encoder_parameters("a")]) - before


@pytest.mark.parametrize(
    "adam", [ADAM, {"optimizer": "adamw", "lr": 0.01, "weight_decay": 1e-4}], ids=["adam", "adamw"]
)
def test_a_constant_coefficient_is_nearly_a_no_op_under_adam_but_not_under_sgd(adam):
    one, tenth = scaled_training(adam, 1.0), scaled_training(adam, 0.1)
    assert float((tenth - one).norm() / one.norm()) < 1e-4
    one, tenth = scaled_training(SGD, 1.0), scaled_training(SGD, 0.1)
    assert float(tenth.norm() / one.norm()) == pytest.approx(0.1, rel=0.1)
    assert torch.allclose(
        scaled_training(SGD, 0.1, steps=1), 0.1 * scaled_training(SGD, 1.0, steps=1), atol=1e-12, rtol=1e-9
    )
