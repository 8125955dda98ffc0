"""SMP schedule (Eq. 6-7), ranking with ties, suppression modes and gradient gating (Eq. 8)."""

import math

import pytest
import torch

from g2d.methods.smp import gate_gradients, kappa, phase_of_epoch, prioritized, rank_modalities, total_epochs


def test_two_modality_schedule():
    taus = (2, 3)
    ranking = ["video", "audio"]  # video least confident
    assert total_epochs(taus) == 5
    assert [prioritized(e, taus, ranking) for e in range(1, 6)] == [
        ["video"], ["video"], ["video", "audio"], ["video", "audio"], ["video", "audio"]]


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
    enc, head, before, head_before, _ = _step("freeze", {"a": 0.0, "v": 1.0}, lr=0.1, momentum=0.9,
                                              weight_decay=0.1)
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
