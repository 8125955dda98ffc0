"""The baselines' update rules on tiny hand-checkable tensors, and each method through the real engine.

Rules: OGM-GE coefficients (k = 2 and k > 2), which encoder they touch, GE noise; UMT's loss;
MMPareto's two gradients, cosine and min-norm branches; MLA's head-gradient projection and
entropy mixing; AGM's ratios and coefficients against running means; method state for resume;
SMP gating added to joint and UMT. Integration: every method trains on the toy dataset.
"""

from __future__ import annotations

import json
import math

import pytest
import torch
from torch import nn

from g2d.methods import get_method
from g2d.methods.agm import (
    AGM,
    agm_coefficients,
    discrepancy_ratios,
    mono_modal_responses,
    mono_modal_scores,
    shapley_values,
)
from g2d.methods.base import Method
from g2d.methods.g2d import G2D
from g2d.methods.mla import MLA, project_out
from g2d.methods.mmpareto import MMPareto, flat_grad, min_norm_weight, pareto_combine
from g2d.methods.ogm_ge import OGMGE, modulate_with_noise, ogm_coefficients, ogm_scores
from g2d.methods.options import AGMParams, MLAParams, MMParetoParams, OGMGEParams, UMTParams
from g2d.methods.smp import SMPGating
from g2d.methods.umt import UMT, UMTSMP
from g2d.models.fusion import build_fusion
from g2d.models.student import StudentOutput
from g2d.stages import evaluate, score, train_student, train_teachers
from g2d.training import checkpoint
from g2d.types import Batch, TeacherBatch

from conftest import COMMON, MODS, TinyStudent, tiny_batch, toy_params, write_toy_dataset


def set_grads(model: nn.Module, value: float = 1.0) -> None:
    for p in model.parameters():
        p.grad = torch.full_like(p, value)


def output(logits: dict[str, list[list[float]]]) -> StudentOutput:
    t = {m: torch.tensor(v) for m, v in logits.items()}
    return StudentOutput(features={}, logits=t, fused=torch.stack(list(t.values())).mean(0))


# --- OGM-GE -----------------------------------------------------------------------------------


def test_ogm_coefficients_two_modalities():
    k = ogm_coefficients({"a": 3.0, "v": 1.0}, alpha=0.5)
    assert k["a"] == pytest.approx(1 - math.tanh(0.5 * 3.0)) and k["v"] == 1.0
    assert ogm_coefficients({"a": 2.0, "v": 2.0}, alpha=0.5) == {"a": 1.0, "v": 1.0}  # ratio 1 is not > 1


def test_ogm_coefficients_compare_with_mean_of_others_for_k3():
    k = ogm_coefficients({"a": 4.0, "v": 1.0, "t": 3.0}, alpha=1.0)
    assert k["a"] == pytest.approx(1 - math.tanh(4.0 / 2.0))
    assert k["t"] == pytest.approx(1 - math.tanh(3.0 / 2.5))
    assert k["v"] == 1.0


def test_ogm_scores_sum_true_class_probabilities():
    s = ogm_scores(
        {"a": torch.zeros(2, 3), "v": torch.tensor([[math.log(2.0), 0.0, 0.0]] * 2)},
        torch.tensor([0, 0]),
        "classification",
    )
    assert s["a"] == pytest.approx(2 / 3) and s["v"] == pytest.approx(2 * 0.5)


def test_ogm_modulates_only_the_dominant_encoder():
    model = TinyStudent()
    set_grads(model, 1.0)
    method = OGMGE(**COMMON, options=OGMGEParams(alpha=1.0, ge=False))
    out = output({"a": [[5.0, 0, 0], [0, 5.0, 0]], "v": [[0.0, 0, 0], [0, 0, 0]]})  # audio far more confident
    logs = method.modulate(model, tiny_batch(2), 1, out)
    expected = 1 - math.tanh(logs["ogm_score_a"] / logs["ogm_score_v"])
    assert logs["ogm_coeff_a"] == pytest.approx(expected) and logs["ogm_coeff_v"] == 1.0
    assert all(torch.allclose(p.grad, torch.full_like(p, expected)) for p in model.encoders["a"].parameters())
    assert all(torch.equal(p.grad, torch.ones_like(p)) for p in model.encoders["v"].parameters())
    assert all(torch.equal(p.grad, torch.ones_like(p)) for p in model.fusion.parameters())


def test_ogm_outside_its_epoch_window_leaves_gradients_alone():
    model = TinyStudent()
    set_grads(model, 1.0)
    method = OGMGE(**COMMON, options=OGMGEParams(alpha=1.0, start=2, end=3, ge=True))
    logs = method.modulate(model, tiny_batch(2), 4, output({"a": [[5.0, 0, 0]] * 2, "v": [[0.0, 0, 0]] * 2}))
    assert logs["ogm_coeff_a"] == 1.0
    assert all(torch.equal(p.grad, torch.ones_like(p)) for p in model.parameters())


def test_ogm_default_window_is_the_official_51_epochs():
    """The official `modulation_starts <= epoch <= modulation_ends` with 0-based epochs 0 and 50 modulates
    51 epochs; ours are 1-based: epochs 1..51."""
    official = range(0, 50 + 1)
    method = OGMGE(**COMMON, options=OGMGEParams(alpha=1.0, ge=False))
    model, batch, out = TinyStudent(), tiny_batch(2), output({"a": [[5.0, 0, 0]] * 2, "v": [[0.0, 0, 0]] * 2})
    active = [e for e in range(1, 60) if method.modulate(model, batch, e, out)["ogm_coeff_a"] < 1]
    assert active == list(range(1, 52)) and len(active) == len(official)


def test_ge_noise_has_the_gradient_std():
    p = nn.Parameter(torch.zeros(200, 100))
    g = torch.Generator().manual_seed(0)
    p.grad = torch.randn(200, 100, generator=g) * 2.0 + 1.0
    before = p.grad.clone()
    modulate_with_noise([p], 0.25, True, torch.Generator().manual_seed(1))
    noise = p.grad - 0.25 * before
    assert float(noise.std()) == pytest.approx(float(before.std()), rel=0.03)
    assert abs(float(noise.mean())) < 0.05
    scalar = nn.Parameter(torch.zeros(1))
    scalar.grad = torch.ones(1)
    modulate_with_noise([scalar], 0.5, True, None)  # a one-element tensor has no std: no noise, no NaN
    assert scalar.grad.item() == 0.5


def test_ogm_noise_generator_state_round_trips():
    out = output({"a": [[5.0, 0, 0]] * 2, "v": [[0.0, 0, 0]] * 2})
    method = OGMGE(**COMMON, options=OGMGEParams(alpha=1.0))
    model = TinyStudent()
    set_grads(model)
    method.modulate(model, tiny_batch(2), 1, out)
    state = method.state_dict()
    resumed = OGMGE(**COMMON, options=OGMGEParams(alpha=1.0))
    resumed.load_state_dict(state)
    grads = []
    for m in (method, resumed):
        set_grads(model)
        m.modulate(model, tiny_batch(2), 1, out)
        grads.append([p.grad.clone() for p in model.parameters()])
    assert all(torch.equal(x, y) for x, y in zip(*grads))


# --- UMT and SMP as an add-on ----------------------------------------------------------------


def test_umt_loss_by_hand():
    teacher = TeacherBatch(features={"a": torch.zeros(1, 2), "v": torch.ones(1, 2)}, logits={}, confidence={})
    out = StudentOutput(
        features={"a": torch.tensor([[1.0, 2.0]]), "v": torch.tensor([[1.0, 3.0]])}, logits={}, fused=torch.zeros(1, 2)
    )
    parts = UMT(**COMMON, options=UMTParams(weight=0.5)).loss(
        out, Batch(torch.arange(1), {}, torch.tensor([1]), teacher)
    )
    assert parts.feat["a"].item() == pytest.approx(2.5) and parts.feat["v"].item() == pytest.approx(2.0)
    assert parts.total.item() == pytest.approx(math.log(2) + 0.5 * 4.5)
    assert parts.logit == {}


def test_smp_gating_has_one_home():
    for cls in (G2D, UMTSMP):
        assert issubclass(cls, SMPGating)
        assert cls.modulate is SMPGating.modulate and cls.state_dict is SMPGating.state_dict
    assert UMTSMP.loss is UMT.loss and get_method("joint_smp").loss is Method.loss


@pytest.mark.parametrize("name", ["joint_smp", "umt_smp"])
def test_smp_addons_gate_by_phase(name):
    teacher = TeacherBatch(
        features={}, logits={}, confidence={"a": torch.tensor([0.9, 0.9]), "v": torch.tensor([0.2, 0.4])}
    )
    method = get_method(name)(**COMMON)
    method.setup(None)
    model = TinyStudent()
    for epoch, expect_a in ((1, 0.0), (2, 1.0)):  # phase 1: only the least confident (video) trains
        set_grads(model)
        logs = method.modulate(
            model, tiny_batch(2, teacher=teacher), epoch, StudentOutput(features={}, logits={}, fused=torch.zeros(2, 3))
        )
        assert logs["kappa_a"] == expect_a and logs["kappa_v"] == 1.0
        assert all(torch.equal(p.grad, torch.full_like(p, expect_a)) for p in model.encoders["a"].parameters())
        assert all(torch.equal(p.grad, torch.ones_like(p)) for p in model.encoders["v"].parameters())
        assert all(torch.equal(p.grad, torch.ones_like(p)) for p in model.fusion.parameters())
    assert method.state_dict() == {"ranking": ["v", "a"]}


# --- MMPareto ---------------------------------------------------------------------------------


def test_mmpareto_min_norm_branch_by_hand():
    g_mm, g_uni = torch.tensor([1.0, 0.0]), torch.tensor([-1.0, 1.0])  # cosine -1/sqrt(2): conflict
    assert min_norm_weight(g_mm, g_uni) == pytest.approx(0.6)
    combined, cos, w = pareto_combine(g_mm, g_uni, gamma=1.5)
    assert cos == pytest.approx(-1 / math.sqrt(2)) and w == pytest.approx(0.6)
    # 0.6 g_mm + 0.4 g_uni = (0.2, 0.4), rescaled to |g_mm + g_uni| = 1, times 1.5
    assert torch.allclose(combined, 1.5 * torch.tensor([0.2, 0.4]) / math.sqrt(0.2))


def test_mmpareto_cosine_branch_by_hand():
    combined, cos, w = pareto_combine(torch.tensor([1.0, 0.0]), torch.tensor([1.0, 1.0]), gamma=1.5)
    assert cos == pytest.approx(1 / math.sqrt(2)) and w == 0.5
    assert torch.allclose(combined, torch.tensor([3.0, 1.5]))  # mean (1, 0.5) rescaled to |(2, 1)|, x 1.5


def test_mmpareto_rescales_per_tensor_and_only_upward_by_hand():
    # an encoder of two tensors, sizes 2 and 1; cosine -2 / sqrt(6) < 0, so the min-norm weight:
    g_mm, g_uni = torch.tensor([1.0, 0.0, 1.0]), torch.tensor([-1.0, 1.0, -1.0])
    combined, cos, w = pareto_combine(g_mm, g_uni, 1.5, "tensor", [2, 1])
    assert w == pytest.approx(5 / 9)  # g = 2 (w g_mm + (1 - w) g_uni) = (2/9, 8/9 | 2/9); g_mm + g_uni = (0, 1 | 0)
    first = torch.tensor([2.0, 8.0]) / math.sqrt(68)  # |(2/9, 8/9)| < 1: scaled up to norm 1
    assert torch.allclose(combined, 1.5 * torch.cat([first, torch.tensor([2 / 9])]))  # 2/9 > 0: never scaled down
    whole, _, _ = pareto_combine(g_mm, g_uni, 1.5, "encoder", [2, 1])  # the whole encoder to |(0, 1, 0)| = 1
    assert torch.allclose(whole, 1.5 * torch.tensor([2.0, 8.0, 2.0]) / math.sqrt(72))
    same, _, w = pareto_combine(torch.tensor([1.0, 0.0, 2.0]), torch.tensor([1.0, 1.0, 0.0]), 1.5, "tensor", [2, 1])
    assert w == 0.5 and torch.allclose(same, 1.5 * torch.tensor([2.0, 1.0, 2.0]))  # agreeing: the plain sum
    zero, _, _ = pareto_combine(torch.zeros(3), torch.zeros(3), 1.5, "tensor", [2, 1])
    assert torch.equal(zero, torch.zeros(3))
    with pytest.raises(ValueError, match="mmpareto.rescale 'layer'; choose tensor or encoder"):
        pareto_combine(g_mm, g_uni, 1.5, "layer")


def test_min_norm_weight_is_clipped_to_the_segment():
    assert min_norm_weight(torch.tensor([1.0, 0.0]), torch.tensor([3.0, 0.0])) == 1.0
    assert min_norm_weight(torch.tensor([2.0, 0.0]), torch.tensor([2.0, 0.0])) == 0.5


def test_mmpareto_step_uses_both_gradients_and_differs_from_joint():
    model, batch = TinyStudent("late", bias=True), tiny_batch()  # two tensors per encoder: rescaled one by one
    out = model(batch.inputs)
    method = MMPareto(**COMMON, options=MMParetoParams(gamma=1.5))
    l_mm = torch.nn.functional.cross_entropy(out.fused, batch.target)
    uni = method.unimodal_losses(out, batch)
    expected = {}
    for m in MODS:
        params = model.encoder_parameters(m)
        g_mm, g_uni = flat_grad(l_mm, params), flat_grad(uni[m], params)
        assert not torch.allclose(g_mm, g_uni, atol=1e-4)  # two separate gradients, not one backward of the sum
        expected[m] = pareto_combine(g_mm, g_uni, 1.5, "tensor", [p.numel() for p in params])[0]
    joint = torch.cat([g.reshape(-1) for g in torch.autograd.grad(l_mm, model.encoder_parameters("a"))])
    logs, _ = method.train_step(model, batch, torch.optim.SGD(model.parameters(), lr=0.0), 1)
    for m in MODS:
        got = torch.cat([p.grad.reshape(-1) for p in model.encoder_parameters(m)])
        assert torch.allclose(got, expected[m], atol=1e-6)
    assert not torch.allclose(torch.cat([p.grad.reshape(-1) for p in model.encoder_parameters("a")]), joint, atol=1e-4)
    assert {"mmpareto_cos_a", "mmpareto_weight_v", "loss_uni_a"} <= set(logs)


# --- MLA --------------------------------------------------------------------------------------


def test_projection_removes_the_stored_direction():
    g = project_out(torch.tensor([1.0, 1.0, 0.0]), [torch.tensor([2.0, 0.0, 0.0])])
    assert torch.allclose(g, torch.tensor([0.0, 1.0, 0.0]))
    g = project_out(torch.tensor([1.0, 1.0, 1.0]), [torch.tensor([1.0, 0, 0]), torch.tensor([1.0, 1.0, 0])])
    assert torch.allclose(g, torch.tensor([0.0, 0.0, 1.0]))  # the span, not each direction alone


def test_mla_projection_changes_the_head_gradient_and_makes_it_orthogonal():
    model, batch = TinyStudent("shared", classes=3), tiny_batch()
    method = MLA(**COMMON, options=MLAParams(inference="fixed"))
    head = model.fusion.head
    raw = torch.autograd.grad(
        nn.functional.cross_entropy(head(model.encoders["v"](batch.inputs["v"])), batch.target), list(head.parameters())
    )
    raw_v = torch.cat([g.reshape(-1) for g in raw])
    logs, out = method.train_step(model, batch, torch.optim.SGD(model.parameters(), lr=0.0), 1)
    kept_v = torch.cat([p.grad.reshape(-1) for p in head.parameters()])  # video was the step's last modality
    assert torch.allclose(method.directions["v"], raw_v / raw_v.norm(), atol=1e-6)
    assert not torch.allclose(kept_v, raw_v, atol=1e-4)
    assert abs(float(kept_v.dot(method.directions["a"]))) < 1e-6
    assert logs["mla_kept_a"] == 1.0 and 0 < logs["mla_kept_v"] < 1  # audio came first: nothing to protect yet
    assert all(p.grad is None for p in model.encoders["a"].parameters())  # video's step touches video only
    restored = MLA(**COMMON)
    restored.load_state_dict(method.state_dict())
    assert all(torch.equal(restored.directions[m], method.directions[m]) for m in MODS)


def test_mla_uses_a_shared_head_with_the_chosen_inference():
    assert MLA(**COMMON, options=MLAParams(inference="entropy")).student_fusion("late") == "shared_entropy"
    assert MLA(**COMMON, options=MLAParams(inference="fixed")).student_fusion("concat") == "shared"
    with pytest.raises(ValueError, match="shared head"):
        MLA(**COMMON).train_step(
            TinyStudent("late"), tiny_batch(), torch.optim.SGD(TinyStudent().parameters(), lr=0.1), 1
        )


def test_entropy_mixing_by_hand():
    fusion = build_fusion("shared_entropy", [2, 2], 2)
    a, v = torch.tensor([[0.0, 0.0]]), torch.tensor([[math.log(3.0), 0.0]])
    h_a, h_v = math.log(2), -(0.75 * math.log(0.75) + 0.25 * math.log(0.25))
    w_a = math.exp(-h_a) / (math.exp(-h_a) + math.exp(-h_v))
    assert torch.allclose(fusion.mix([a, v]), w_a * a + (1 - w_a) * v)
    assert torch.allclose(build_fusion("shared", [2, 2], 2).mix([a, v]), (a + v) / 2)


# --- AGM --------------------------------------------------------------------------------------


def test_agm_ratios_and_coefficients_by_hand():
    assert discrepancy_ratios({"a": 1.0, "v": 2.0}) == pytest.approx({"a": math.e, "v": 1 / math.e})
    c = agm_coefficients({"a": 1.0, "v": 2.0}, {"a": 1.5, "v": 1.5}, alpha=0.5)
    assert c["a"] == pytest.approx(math.exp(0.5 * (1 - math.e)))  # audio ahead of its running balance: slowed
    assert c["v"] == pytest.approx(math.exp(0.5 * (1 - 1 / math.e)))  # video behind: boosted
    r = discrepancy_ratios({"a": 1.0, "v": 2.0, "t": 4.0})
    assert r["a"] == pytest.approx(math.exp(2.0)) and r["t"] == pytest.approx(math.exp(-2.5))


class KnownF(nn.Module):
    """A stand-in student whose fused output is known: f = x_a + x_v + x_t + x_a * x_v + 1 (per input,
    over the modalities present), recording the mode and grad state of every call."""

    def __init__(self, modalities: tuple[str, ...]) -> None:
        super().__init__()
        self.modalities, self.calls = list(modalities), []

    def forward(self, inputs: dict[str, torch.Tensor]) -> StudentOutput:
        self.calls.append((self.training, torch.is_grad_enabled()))
        fused = sum(inputs.values()) + inputs["a"] * inputs["v"] + 1.0
        return StudentOutput(features={}, logits={}, fused=fused)


def test_shapley_responses_by_hand_two_modalities():
    model = KnownF(MODS).train()
    a, v = torch.tensor([[1.0, 0.0, -1.0]]), torch.tensor([[2.0, 3.0, 0.5]])
    r = mono_modal_responses(model, {"a": a, "v": v})
    f = {"av": a + v + a * v + 1, "a0": a + 1, "0v": v + 1}
    assert torch.allclose(r["a"], 0.5 * (f["av"] - f["0v"] + f["a0"]))  # AGM's Modality_Audio
    assert torch.allclose(r["a"], torch.tensor([[2.5, 0.5, -0.75]]))  # a + a v / 2 + 1 / 2
    assert torch.allclose(r["v"], torch.tensor([[3.5, 3.5, 0.75]]))  # v + a v / 2 + 1 / 2
    assert torch.allclose(r["a"] + r["v"], f["av"])  # efficiency, with f(empty) taken as 0
    assert model.training and model.calls == [(False, False)] * 3  # 2^2 - 1 passes, eval, no grad


def test_shapley_responses_by_hand_three_modalities():
    x = {"a": torch.tensor([[1.0]]), "v": torch.tensor([[2.0]]), "t": torch.tensor([[4.0]])}
    r = mono_modal_responses(KnownF(("a", "v", "t")), x)
    # additive parts go to their modality, the a-v interaction half to each, the constant a third to each
    assert r["a"].item() == pytest.approx(1.0 + 2.0 / 2 + 1 / 3)
    assert r["v"].item() == pytest.approx(2.0 + 2.0 / 2 + 1 / 3)
    assert r["t"].item() == pytest.approx(4.0 + 1 / 3)
    assert shapley_values(lambda s: float(len(s) ** 2), ["p", "q", "r"]) == pytest.approx(
        {"p": 3.0, "q": 3.0, "r": 3.0}
    )


def test_agm_scores_are_the_loss_of_the_shapley_response_and_scale_encoder_gradients():
    model, batch = TinyStudent("late"), tiny_batch()
    model.train()
    scores = mono_modal_scores(model, batch, "classification")
    assert model.training
    zero = {m: torch.zeros_like(x) for m, x in batch.inputs.items()}
    with torch.no_grad():
        both = model(batch.inputs).fused
        only_a = model({"a": batch.inputs["a"], "v": zero["v"]}).fused
        only_v = model({"a": zero["a"], "v": batch.inputs["v"]}).fused
    response_a = 0.5 * (both - only_v + only_a)
    assert scores["a"] == pytest.approx(float(nn.functional.cross_entropy(response_a, batch.target)))
    assert scores["a"] != pytest.approx(float(nn.functional.cross_entropy(only_a, batch.target)))
    method = AGM(**COMMON, options=AGMParams(alpha=0.5))
    method.running = {"a": 1.0, "v": 1.2}
    method.steps = 3
    set_grads(model)
    logs = method.modulate(model, batch, 1, model(batch.inputs))
    expected = agm_coefficients(scores, {"a": 1.0, "v": 1.2}, 0.5)
    for m in MODS:
        assert logs[f"agm_coeff_{m}"] == pytest.approx(expected[m])
        assert all(torch.allclose(p.grad, torch.full_like(p, expected[m])) for p in model.encoder_parameters(m))
        assert method.running[m] == pytest.approx(({"a": 1.0, "v": 1.2}[m] * 3 + scores[m]) / 4)
    assert all(torch.equal(p.grad, torch.ones_like(p)) for p in model.fusion.parameters())
    restored = AGM(**COMMON)
    restored.load_state_dict(method.state_dict())
    assert restored.running == method.running and restored.steps == 4


# --- every method through the engine ---------------------------------------------------------


@pytest.fixture(scope="module")
def toy_run(tmp_path_factory):
    """A small dataset with trained teachers and their score cache, shared by the integration tests."""
    tmp = tmp_path_factory.mktemp("methods")
    h5 = write_toy_dataset(tmp / "toy.h5", n={"train": 24, "val": 8, "test": 8})
    params = toy_params(teacher={"epochs": 1}, tau1=1, tau2=1)
    train_teachers.run(params, "toy", 0, h5, tmp / "teachers", tmp / "resume")
    score.run(params, h5, tmp / "teachers", tmp / "scores.h5", tmp / "tm.json", tmp / "c.png")
    return params, tmp, h5


def run_method(toy_run, name: str) -> list[dict]:
    params, tmp, h5 = toy_run
    out = tmp / name
    train_student.run(
        params,
        "toy",
        name,
        0,
        h5,
        tmp / "scores.h5",
        tmp / "teachers",
        out / "student.pt",
        out / "log.json",
        out / "resume",
    )
    return json.loads((out / "log.json").read_text())


@pytest.mark.parametrize(
    "name, logged",
    [
        ("ogm_ge", ["ogm_coeff_audio", "ogm_score_video"]),
        ("agm", ["agm_coeff_audio", "agm_score_video"]),
        ("mmpareto", ["mmpareto_cos_audio", "loss_uni_video"]),
        ("umt", ["loss_feat_audio", "loss_feat_video"]),
        ("joint_smp", ["kappa_audio", "rho_video"]),
        ("umt_smp", ["kappa_video", "loss_feat_audio"]),
    ],
)
def test_method_trains_in_the_engine(toy_run, name, logged):
    log = run_method(toy_run, name)
    assert [r["epoch"] for r in log] == [1, 2]
    assert set(logged) <= set(log[0])
    assert log[-1]["loss"] < log[0]["loss"]
    if name == "ogm_ge":
        assert min(min(r["ogm_coeff_audio"], r["ogm_coeff_video"]) for r in log) < 1.0
    if name.endswith("_smp"):
        assert min(log[0]["kappa_audio"], log[0]["kappa_video"]) < 1.0  # phase 1 suppresses someone
        assert log[-1]["kappa_audio"] == log[-1]["kappa_video"] == 1.0  # the joint phase


def test_mla_trains_and_its_checkpoint_evaluates(toy_run):
    params, tmp, h5 = toy_run
    log = run_method(toy_run, "mla")
    assert log[-1]["loss"] < log[0]["loss"]
    assert min(r["mla_kept_video"] for r in log) < 1.0  # the projection acted inside real training
    state = checkpoint.load(tmp / "mla" / "student.pt")
    assert state["fusion"] == "shared_entropy"
    result = evaluate.run(params, h5, tmp / "scores.h5", tmp / "mla" / "student.pt", tmp / "mla" / "m.json")
    assert 0 <= result["test"]["fused"]["accuracy"] <= 1 and set(result["test"]) == {"fused", "audio", "video"}
