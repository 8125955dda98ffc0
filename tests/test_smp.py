"""SMP schedule (Eq. 6-7), ranking with ties, suppression modes and gradient gating (Eq. 8): which
parameters are gated (`smp.gate`), the momentum leak of zero_grad, and freeze with BatchNorm."""

import math

import pytest
import torch
from torch import nn

from g2d.methods import get_method
from g2d.methods.options import SMPParams
from g2d.methods.smp import (
    gate_gradients,
    gated_parameters,
    kappa,
    phase_of_epoch,
    prioritized,
    rank_modalities,
    total_epochs,
)
from g2d.models.student import MultimodalStudent
from g2d.types import Batch, TeacherBatch


def test_two_modality_schedule():
    taus = (2, 3)
    ranking = ["video", "audio"]  # video least confident
    assert total_epochs(taus) == 5
    assert [prioritized(e, taus, ranking) for e in range(1, 6)] == [
        ["video"],
        ["video"],
        ["video", "audio"],
        ["video", "audio"],
        ["video", "audio"],
    ]


def test_three_modality_schedule():
    taus = (1, 2, 1)
    ranking = ["v", "a", "t"]
    assert [prioritized(e, taus, ranking) for e in range(1, 5)] == [["v"], ["a"], ["a"], ["v", "a", "t"]]
    assert [phase_of_epoch(e, taus) for e in range(1, 5)] == [0, 1, 1, 2]


def test_zero_tau_skips_phase():
    assert prioritized(1, (0, 2), ["v", "a"]) == ["v", "a"]
    assert prioritized(1, (0, 1, 1), ["v", "a", "t"]) == ["a"]


def test_epoch_outside_schedule_is_an_error():
    with pytest.raises(ValueError):
        phase_of_epoch(0, (1, 1))
    with pytest.raises(ValueError):
        phase_of_epoch(3, (1, 1))


def test_ranking_ascending_and_ties_keep_previous_order():
    assert rank_modalities({"a": 0.9, "v": 0.3}, ["a", "v"]) == ["v", "a"]
    assert rank_modalities({"a": 0.5, "v": 0.5}, ["v", "a"]) == ["v", "a"]
    assert rank_modalities({"a": 0.5, "v": 0.5}, ["a", "v"]) == ["a", "v"]
    assert rank_modalities({"a": 0.5, "v": 0.5, "t": 0.1}, ["v", "a", "t"]) == ["t", "v", "a"]


def test_kappa_complete_suppression():
    rho = {"v": 0.2, "a": 0.8}
    assert kappa(1, (1, 1), ["v", "a"], rho, "zero_grad") == {"v": 1.0, "a": 0.0}
    assert kappa(1, (1, 1), ["v", "a"], rho, "freeze") == {"v": 1.0, "a": 0.0}
    assert kappa(2, (1, 1), ["v", "a"], rho, "zero_grad") == {"v": 1.0, "a": 1.0}


def test_kappa_partial_is_one_minus_tanh_of_ratio():
    rho = {"v": 0.2, "a": 0.8}
    k = kappa(1, (1, 1), ["v", "a"], rho, "partial")
    assert k["v"] == 1.0
    assert k["a"] == pytest.approx(1 - math.tanh(4.0))
    assert kappa(2, (1, 1), ["v", "a"], rho, "partial") == {"v": 1.0, "a": 1.0}


def test_kappa_partial_with_three_modalities_by_hand():
    """k = 3 (Eq. 6-8 with partial suppression): phase q prioritises the q-th least confident modality
    alone and scales every other by 1 - tanh(rho_m / rho_prioritised); the last phase trains all."""
    rho = {"t": 0.6, "a": 0.3, "v": 0.1}
    ranking = ["v", "a", "t"]
    taus = (1, 1, 1)
    one = kappa(1, taus, ranking, rho, "partial")
    assert one == pytest.approx({"v": 1.0, "a": 1 - math.tanh(3.0), "t": 1 - math.tanh(6.0)})
    two = kappa(2, taus, ranking, rho, "partial")
    assert two == pytest.approx({"v": 1 - math.tanh(1 / 3), "a": 1.0, "t": 1 - math.tanh(2.0)})
    assert kappa(3, taus, ranking, rho, "partial") == {"v": 1.0, "a": 1.0, "t": 1.0}
    assert kappa(2, taus, ranking, rho, "zero_grad") == {"v": 0.0, "a": 1.0, "t": 0.0}


def test_kappa_unknown_mode():
    with pytest.raises(ValueError):
        kappa(1, (1, 1), ["v", "a"], {"v": 0.1, "a": 0.2}, "bogus")


def _two_encoders():
    torch.manual_seed(0)
    enc = {"a": torch.nn.Linear(2, 2), "v": torch.nn.Linear(2, 2)}
    head = torch.nn.Linear(4, 1)
    params = [*enc["a"].parameters(), *enc["v"].parameters(), *head.parameters()]
    return enc, head, params


def _step(mode: str, coeff: dict, optimizer_cls=torch.optim.SGD, **opt_kw):
    enc, head, params = _two_encoders()
    before = {m: [p.detach().clone() for p in e.parameters()] for m, e in enc.items()}
    head_before = [p.detach().clone() for p in head.parameters()]
    opt = optimizer_cls(params, **opt_kw)
    x = torch.tensor([[1.0, -2.0]])
    out = head(torch.cat([enc["a"](x), enc["v"](x)], dim=1)).sum()
    opt.zero_grad(set_to_none=True)
    out.backward()
    grads = {m: [p.grad.clone() for p in e.parameters()] for m, e in enc.items()}
    gate_gradients({m: list(e.parameters()) for m, e in enc.items()}, coeff, mode)
    opt.step()
    return enc, head, before, head_before, grads


def test_freeze_leaves_suppressed_encoder_bit_identical_even_with_weight_decay():
    enc, head, before, head_before, _ = _step("freeze", {"a": 0.0, "v": 1.0}, lr=0.1, momentum=0.9, weight_decay=0.1)
    assert all(torch.equal(p, b) for p, b in zip(enc["a"].parameters(), before["a"]))
    assert all(not torch.equal(p, b) for p, b in zip(enc["v"].parameters(), before["v"]))
    assert all(not torch.equal(p, b) for p, b in zip(head.parameters(), head_before))


def test_zero_grad_zeroes_gradient_but_weight_decay_still_acts():
    enc, _, before, _, _ = _step("zero_grad", {"a": 0.0, "v": 1.0}, lr=0.1, weight_decay=0.1)
    for p, b in zip(enc["a"].parameters(), before["a"]):
        assert torch.allclose(p, b * (1 - 0.1 * 0.1))  # only the decay term moved it
    enc, _, before, _, _ = _step("zero_grad", {"a": 0.0, "v": 1.0}, lr=0.1)
    assert all(torch.equal(p, b) for p, b in zip(enc["a"].parameters(), before["a"]))


def test_gating_leaves_prioritised_gradients_untouched_and_scales_partial():
    enc, head, params = _two_encoders()
    x = torch.tensor([[1.0, -2.0]])
    head(torch.cat([enc["a"](x), enc["v"](x)], dim=1)).sum().backward()
    raw = {m: [p.grad.clone() for p in e.parameters()] for m, e in enc.items()}
    gate_gradients({m: list(e.parameters()) for m, e in enc.items()}, {"a": 0.25, "v": 1.0}, "partial")
    for p, g in zip(enc["v"].parameters(), raw["v"]):
        assert torch.equal(p.grad, g)
    for p, g in zip(enc["a"].parameters(), raw["a"]):
        assert torch.allclose(p.grad, 0.25 * g)


def test_gate_all_is_every_parameter_and_conv_only_4d_weights():
    enc = nn.Sequential(nn.Conv2d(1, 2, 3, bias=True), nn.BatchNorm2d(2), nn.Flatten(), nn.Linear(2, 2))
    assert gated_parameters(enc.parameters(), "all") == list(enc.parameters())
    assert gated_parameters(enc.parameters(), "conv") == [enc[0].weight]
    with pytest.raises(ValueError, match="smp.gate 'bn'; choose all or conv"):
        gated_parameters(enc.parameters(), "bn")


def _suppressed_steps(mode: str, weight_decay: float = 0.0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """SGD (lr 0.1, momentum 0.9): a step with gradient g, then a step whose gradient SMP suppresses.
    Returns the parameter before either step, after the first and after the second."""
    p = nn.Parameter(torch.tensor([1.0, -2.0]))
    opt = torch.optim.SGD([p], lr=0.1, momentum=0.9, weight_decay=weight_decay)
    g = torch.tensor([0.5, 0.25])
    history = [p.detach().clone()]
    for k in (1.0, 0.0):
        opt.zero_grad(set_to_none=True)
        p.grad = g.clone()
        gate_gradients({"a": [p]}, {"a": k}, mode)
        opt.step()
        history.append(p.detach().clone())
    return history[0], history[1], history[2]


def test_zero_grad_leaks_momentum_and_freeze_does_not():
    """The leak documented in methods/smp.py: zero_grad still moves the parameter by lr * 0.9 * g."""
    g, lr, mu, wd = torch.tensor([0.5, 0.25]), 0.1, 0.9, 0.01
    _, p1, p2 = _suppressed_steps("zero_grad")
    assert torch.allclose(p2 - p1, -lr * mu * g, atol=1e-7, rtol=0)
    assert not torch.allclose(p2, p1)
    p0, p1, p2 = _suppressed_steps("zero_grad", weight_decay=wd)  # weight decay adds its own pull
    assert torch.allclose(p2 - p1, -lr * (mu * (g + wd * p0) + wd * p1), atol=1e-7, rtol=0)
    for decay in (0.0, wd):
        _, p1, p2 = _suppressed_steps("freeze", weight_decay=decay)
        assert torch.equal(p2, p1)


def _resnet_student() -> tuple[MultimodalStudent, Batch]:
    torch.manual_seed(0)
    shapes = {"audio": (1, 32, 32), "video": (1, 32, 32)}
    model = MultimodalStudent(["audio", "video"], {m: "resnet18" for m in shapes}, shapes, "late", 3)
    g = torch.Generator().manual_seed(1)
    teacher = TeacherBatch(
        features={}, logits={}, confidence={"audio": torch.full((4,), 0.9), "video": torch.full((4,), 0.2)}
    )
    batch = Batch(
        index=torch.arange(4),
        inputs={m: torch.randn(4, *s, generator=g) for m, s in shapes.items()},
        target=torch.tensor([0, 1, 2, 0]),
        teacher=teacher,
    )
    return model.train(), batch


def _state(module: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def test_freeze_keeps_a_batchnorm_encoder_bit_identical_running_statistics_included():
    model, batch = _resnet_student()
    method = get_method("joint_smp")(
        modalities=model.modalities, task="classification", taus=(1, 1), smp=SMPParams(suppression="freeze")
    )
    method.setup(None)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    method.train_step(model, batch, opt, 2)  # a joint step first: momentum buffers for both encoders
    before = {m: _state(model.encoders[m]) for m in model.modalities}
    logs, _ = method.train_step(model, batch, opt, 1)  # phase 1: video (least confident) alone
    assert logs["kappa_audio"] == 0.0 and logs["kappa_video"] == 1.0
    after = {m: _state(model.encoders[m]) for m in model.modalities}
    assert all(torch.equal(after["audio"][k], v) for k, v in before["audio"].items())
    changed = [k for k, v in before["video"].items() if not torch.equal(after["video"][k], v)]
    assert any(k.endswith("running_mean") for k in changed) and any(k.endswith("conv1.weight") for k in changed)


def test_gate_conv_with_zero_grad_lets_norm_layers_of_a_suppressed_encoder_train():
    model, batch = _resnet_student()
    method = get_method("joint_smp")(
        modalities=model.modalities,
        task="classification",
        taus=(1, 1),
        smp=SMPParams(suppression="zero_grad", gate="conv"),
    )
    method.setup(None)
    before = _state(model.encoders["audio"])
    method.train_step(model, batch, torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9), 1)
    encoder = model.encoders["audio"]
    names = {id(p): n for n, p in encoder.named_parameters()}
    convs = [m.weight for m in encoder.modules() if isinstance(m, nn.Conv2d)]
    norms = [p for m in encoder.modules() if isinstance(m, nn.BatchNorm2d) for p in m.parameters()]
    assert len(convs) == 20 and len(norms) == 40  # ResNet-18: 20 convs, 20 BatchNorms (weight and bias)
    assert all(torch.count_nonzero(p.grad) == 0 and torch.equal(p, before[names[id(p)]]) for p in convs)
    assert all(not torch.equal(p, before[names[id(p)]]) for p in norms)
