"""The rest of Table 1 (issue 14): DLMG, UME, PMR, MSES, MSLR and ReconBoost.

For each method, its rule on tiny hand-checkable tensors (the numbers the issue gives), a test that
fails if the rule has no effect, its k > 2 generalisation, its state for resume, and one run through
the real engine (toy data: train, then evaluate the validation-chosen checkpoint).
"""

from __future__ import annotations

import json
import math

import pytest
import torch
from torch import nn

from g2d.io.dataset_file import load_split, read_meta
from g2d.methods.base import modality_parameters
from g2d.methods.dlmg import DLMG, alignment_loss, dlmg_loss, pair_alignment, schedule_weight
from g2d.methods.mses import MSES
from g2d.methods.mslr import MSLR, dynamic_factor
from g2d.methods.options import DLMGParams, MSESParams, MSLRParams, PMRParams, ReconBoostParams
from g2d.methods.pmr import PMR, class_mass, ema_prototypes, lagging, prototype_loss, prototype_scores
from g2d.methods.reconboost import ReconBoost, boosting_loss, consolidation_loss, phase
from g2d.methods.ume import UME
from g2d.models.student import StudentOutput
from g2d.stages import evaluate, score, train_student, train_teachers
from g2d.training import checkpoint
from g2d.training.data import Normalizer, SplitTensors
from g2d.training.optim import build_optimizer
from g2d.training.student import train_student as fit_student
from g2d.types import Batch, EpochBatches

from conftest import COMMON, MODS, TinyStudent, tiny_batch, toy_params, write_toy_dataset

LN3 = math.log(3.0)


# --- DLMG -------------------------------------------------------------------------------------


def test_dlmg_loss_by_hand():
    z = {"a": torch.tensor([[0.0, 0.0]]), "v": torch.tensor([[LN3, 0.0]])}
    fused = (z["a"] + z["v"]) / 2
    y = torch.tensor([0])
    # p_a = (.5, .5), p_v = (.75, .25), m = (.625, .375)
    kl_a = 0.625 * math.log(0.625 / 0.5) + 0.375 * math.log(0.375 / 0.5)
    kl_v = 0.625 * math.log(0.625 / 0.75) + 0.375 * math.log(0.375 / 0.25)
    assert (
        float(pair_alignment(z["a"], z["v"])) == pytest.approx((kl_a + kl_v) / 2) == pytest.approx(0.034841, abs=1e-6)
    )
    total, l_cls, l_align = dlmg_loss(fused, z, y, a1=0.205)
    assert float(l_cls) == pytest.approx(0.455746, abs=1e-6)  # -ln(sqrt 3 / (sqrt 3 + 1))
    assert float(l_align) == pytest.approx(0.034841, abs=1e-6)
    assert float(total) == pytest.approx(2 * (0.205 * 0.455746 + 0.795 * 0.034841), abs=1e-6)  # 0.242253
    # the L(epoch 0) = 0.241937 is this loss at the code's unrounded a1(0) = 0.204625
    assert float(dlmg_loss(fused, z, y, a1=0.204625)[0]) == pytest.approx(0.241937, abs=1e-6)


def test_dlmg_schedule_anchors_and_stretch():
    code = DLMGParams(stretch=False)
    assert [schedule_weight(code, e, 200) for e in (1, 101, 200)] == pytest.approx([0.205, 0.539, 0.916])
    assert schedule_weight(code, 51, 200) == pytest.approx((0.205 + 0.539) / 2)  # linear between anchors
    assert schedule_weight(code, 300, 300) == pytest.approx(0.916)  # clamped after the last anchor
    stretched = DLMGParams()
    assert [schedule_weight(stretched, e, 3) for e in (1, 3)] == pytest.approx([0.205, 0.916])
    assert schedule_weight(stretched, 2, 3) == pytest.approx(0.205 + (0.539 - 0.205) * 99.5 / 100)  # code epoch 99.5
    assert schedule_weight(stretched, 1, 1) == pytest.approx(0.205)


def test_dlmg_alignment_changes_the_gradient_and_pulls_predictions_together():
    z_a = torch.tensor([[0.0, 0.0]], requires_grad=True)
    z_v = torch.tensor([[LN3, 0.0]], requires_grad=True)
    y = torch.tensor([0])
    total, l_cls, _ = dlmg_loss((z_a + z_v) / 2, {"a": z_a, "v": z_v}, y, a1=0.5)
    (g_total,) = torch.autograd.grad(total, z_a, retain_graph=True)
    (g_cls,) = torch.autograd.grad(2 * 0.5 * l_cls, z_a)
    assert not torch.allclose(g_total, g_cls)  # the alignment term acts
    # the alignment's own pull on z_a is towards video's prediction (class 0 up)
    (g_align,) = torch.autograd.grad(pair_alignment(z_a, z_v), z_a)
    assert g_align[0, 0] < 0 < g_align[0, 1]


def test_dlmg_k3_averages_the_pairs():
    z = {"a": torch.zeros(1, 2), "v": torch.tensor([[LN3, 0.0]]), "t": torch.tensor([[0.0, LN3]])}
    pairs = [pair_alignment(z[i], z[j]) for i, j in (("a", "v"), ("a", "t"), ("v", "t"))]
    assert float(alignment_loss(z)) == pytest.approx(float(sum(pairs)) / 3)
    assert float(alignment_loss({"a": z["a"], "v": z["v"]})) == pytest.approx(float(pairs[0]))


def test_dlmg_uses_late_fusion_and_refuses_regression():
    assert DLMG(**COMMON).student_fusion("film") == "late"
    with pytest.raises(ValueError, match="classification only"):
        DLMG(**{**COMMON, "task": "regression"})


# --- UME -------------------------------------------------------------------------------------


class Teacher(nn.Module):
    """A stand-in teacher (encoder + head) whose logits are `bias` for every input."""

    def __init__(self, bias: list[float]) -> None:
        super().__init__()
        self.encoder, self.head = nn.Linear(3, 2, bias=False), nn.Linear(2, len(bias))
        with torch.no_grad():
            self.encoder.weight.normal_()
            self.head.weight.zero_()
            self.head.bias.copy_(torch.tensor(bias))


def test_ume_is_the_mean_of_the_teachers_logits_by_hand():
    teachers = {"a": Teacher([4.0, 3.0, 0.0]), "v": Teacher([-4.0, -2.0, 0.0])}
    model, method = TinyStudent("late"), UME(**COMMON)
    method.initialise(model, teachers)
    out = model(tiny_batch(2).inputs)
    assert torch.allclose(out.fused, torch.tensor([[0.0, 0.5, 0.0]] * 2))
    assert out.fused.argmax(1).tolist() == [1, 1]  # neither teacher's class: audio says 0, video 2
    assert out.logits["a"].argmax(1).tolist() == [0, 0] and out.logits["v"].argmax(1).tolist() == [2, 2]
    assert torch.equal(model.encoders["v"].weight, teachers["v"].encoder.weight)


def test_ume_trains_nothing_and_needs_the_teachers_and_late_fusion():
    method = UME(**COMMON)
    assert method.epochs(30) == 0 and method.student_fusion("concat") == "late"
    with pytest.raises(ValueError, match="teachers' weights"):
        method.initialise(TinyStudent("late"), None)
    with pytest.raises(ValueError, match="late fusion"):
        method.initialise(TinyStudent("concat"), {m: Teacher([0.0, 0.0, 0.0]) for m in MODS})
    k3 = ("a", "v", "t")
    model = TinyStudent("late", modalities=k3)
    UME(**{**COMMON, "modalities": k3}).initialise(model, {m: Teacher([float(i), 0.0, 0.0]) for i, m in enumerate(k3)})
    assert torch.allclose(model(tiny_batch(1, modalities=k3).inputs).fused, torch.tensor([[1.0, 0.0, 0.0]]))


# --- PMR --------------------------------------------------------------------------------------


def test_pmr_masses_and_extra_loss_by_hand():
    protos = torch.tensor([[0.0, 0.0], [2.0, 0.0]])
    y = torch.tensor([0, 1])
    h = {"a": torch.tensor([[0.0, 0.0], [2.0, 0.0]]), "v": torch.tensor([[1.0, 0.0], [1.0, 0.0]])}
    s_a = prototype_scores(h["a"], protos)
    assert torch.allclose(s_a, torch.tensor([[0.0, -2.0], [-2.0, 0.0]]))
    assert class_mass(s_a, y) == pytest.approx(2 / (1 + math.exp(-2)), abs=1e-6) == pytest.approx(1.7616, abs=1e-4)
    assert class_mass(prototype_scores(h["v"], protos), y) == pytest.approx(1.0)
    extra, masses = prototype_loss(h, {"a": protos, "v": protos}, y, alpha=0.5)
    assert lagging(masses) == ["v"]  # rho = S_a / S_v = 1.7616 > 1: video lags
    assert float(extra) == pytest.approx(0.5 * math.log(2))  # alpha ln 2, on video only


def test_pmr_extra_loss_reaches_only_the_lagging_encoder():
    protos = torch.tensor([[0.0, 0.0], [2.0, 0.0]])
    y = torch.tensor([0, 1])
    h_a = torch.tensor([[0.0, 0.0], [2.0, 0.0]], requires_grad=True)
    h_v = torch.tensor([[1.0, 0.0], [1.0, 0.0]], requires_grad=True)
    extra, _ = prototype_loss({"a": h_a, "v": h_v}, {"a": protos, "v": protos}, y, alpha=1.0)
    g_a, g_v = torch.autograd.grad(extra, [h_a, h_v], allow_unused=True)
    assert g_a is None and g_v is not None and float(g_v.abs().sum()) > 0
    assert float(g_v[0, 0]) > 0 > float(g_v[1, 0])  # each video feature pulled towards its class prototype
    tie, masses = prototype_loss({"a": h_v, "v": h_v}, {"a": protos, "v": protos}, y, alpha=1.0)
    assert lagging(masses) == [] and float(tie) == 0.0  # rho = 1: no extra term


def test_pmr_k3_boosts_every_modality_below_the_largest():
    assert sorted(lagging({"a": 1.7, "v": 1.0, "t": 1.2})) == ["t", "v"]
    assert lagging({"a": 1.0, "v": 1.0, "t": 1.0}) == []


def test_pmr_prototype_ema_by_hand_and_empty_classes():
    present = torch.tensor([True, False])
    first = ema_prototypes(None, torch.tensor([[1.0], [5.0]]), present, mu=0.2)
    assert first.tolist() == [[1.0], [0.0]]  # an unseen class has no prototype yet: 0
    old = torch.tensor([[0.0], [3.0]])
    nxt = ema_prototypes(old, torch.tensor([[1.0], [9.0]]), present, mu=0.2)
    assert torch.allclose(nxt, torch.tensor([[0.8], [3.0]]))  # EMA of 0 and 1 is 0.8; the absent class keeps its own


def test_pmr_prototypes_are_class_means_from_a_fraction_of_the_epoch_and_round_trip():
    model = TinyStudent("late")
    batches = [tiny_batch(4, seed=s) for s in range(10)]
    method = PMR(**COMMON, options=PMRParams(mu=0.2))
    model.train()
    method.begin_epoch(model, 1, EpochBatches(count=10, make=lambda: iter(batches)))
    assert model.training
    with torch.no_grad():
        h = model.encoders["a"](batches[0].inputs["a"])  # a tenth of 10 batches: the first one only
    y = batches[0].target
    assert torch.allclose(method.prototypes["a"][0], h[y == 0].mean(0))
    assert torch.allclose(method.prototypes["a"][2], h[y == 2].mean(0))
    restored = PMR(**COMMON)
    restored.load_state_dict(method.state_dict())
    assert all(torch.equal(restored.prototypes[m], method.prototypes[m]) for m in MODS)


def test_pmr_loss_outside_its_window_is_the_task_loss():
    model, batch = TinyStudent("late"), tiny_batch()
    method = PMR(**COMMON, options=PMRParams(start=2, end=3))
    method.begin_epoch(model, 1, EpochBatches(count=1, make=lambda: iter([batch])))
    with torch.no_grad():
        out = model(batch.inputs)
    assert float(method.loss(out, batch).total) == pytest.approx(float(method.loss(out, batch).task))
    method.begin_epoch(model, 2, EpochBatches(count=1, make=lambda: iter([batch])))
    parts = method.loss(out, batch)
    assert float(parts.total) > float(parts.task)  # inside the window someone lags and gets the extra term


# --- MSES -------------------------------------------------------------------------------------


def sgd(model: nn.Module, method, lr: float = 0.1) -> torch.optim.Optimizer:
    return torch.optim.SGD(method.param_groups(model), lr=lr, momentum=0.9, weight_decay=1e-4)


def test_mses_stops_only_the_modality_out_of_patience_and_freezes_it_bit_for_bit():
    model, batch = TinyStudent("late"), tiny_batch()
    method = MSES(**COMMON, options=MSESParams(patience=2))
    opt = sgd(model, method)
    losses = {"a": [1.0, 0.9, 0.95, 0.96], "v": [1.0, 0.8, 0.7, 0.6]}
    for epoch in range(1, 5):
        method.train_step(model, batch, opt, epoch)  # momentum and weight decay build up on both
        logs = method.end_epoch(model, opt, epoch, {f"val_loss_{m}": losses[m][epoch - 1] for m in MODS})
        assert method.stopped == (["a"] if epoch == 4 else [])
    assert logs == {"mses_stopped_a": 1.0, "mses_stopped_v": 0.0}
    assert method.wait == {"a": 2, "v": 0} and method.best == {"a": 0.9, "v": 0.6}
    a_before = [p.detach().clone() for p in modality_parameters(model, "a")]
    v_before = [p.detach().clone() for p in modality_parameters(model, "v")]
    for epoch in (5, 6):
        method.train_step(model, batch, opt, epoch)
    assert all(torch.equal(p, q) for p, q in zip(modality_parameters(model, "a"), a_before))  # stopped for good
    assert not any(torch.equal(p, q) for p, q in zip(modality_parameters(model, "v"), v_before))  # video trains
    assert [g["lr"] for g in opt.param_groups] == [0.0, 0.1]
    assert not model.encoders["a"].training and model.encoders["v"].training


def test_mses_restores_the_best_weights_and_monitors_accuracy():
    model, batch = TinyStudent("late"), tiny_batch()
    method = MSES(**COMMON, options=MSESParams(patience=1, monitor="acc", restore=True))
    opt = sgd(model, method)
    method.end_epoch(model, opt, 1, {"val_acc_a": 0.5, "val_acc_v": 0.5})
    best_a = [p.detach().clone() for p in modality_parameters(model, "a")]
    method.train_step(model, batch, opt, 2)
    method.end_epoch(model, opt, 2, {"val_acc_a": 0.5, "val_acc_v": 0.6})  # audio: no strict improvement
    assert method.stopped == ["a"]
    assert all(torch.equal(p, q) for p, q in zip(modality_parameters(model, "a"), best_a))
    restored = MSES(**COMMON, options=MSESParams(patience=1, monitor="acc", restore=True))
    restored.load_state_dict(method.state_dict())
    assert restored.stopped == ["a"] and restored.best == method.best and restored.wait == method.wait


def test_mses_loss_adds_every_head_and_k3_stops_independently():
    model, batch = TinyStudent("late"), tiny_batch()
    with torch.no_grad():
        out = model(batch.inputs)
    parts = MSES(**COMMON).loss(out, batch)
    ce = torch.nn.functional.cross_entropy
    expected = ce(out.fused, batch.target) + ce(out.logits["a"], batch.target) + ce(out.logits["v"], batch.target)
    assert float(parts.total) == pytest.approx(float(expected))
    k3 = ("a", "v", "t")
    model3 = TinyStudent("late", modalities=k3)
    method = MSES(**{**COMMON, "modalities": k3}, options=MSESParams(patience=1))
    opt = sgd(model3, method)
    method.end_epoch(model3, opt, 1, {"val_loss_a": 1.0, "val_loss_v": 1.0, "val_loss_t": 1.0})
    method.end_epoch(model3, opt, 2, {"val_loss_a": 0.5, "val_loss_v": 1.0, "val_loss_t": 2.0})
    assert method.stopped == ["v", "t"] and [g["lr"] for g in opt.param_groups] == [0.1, 0.0, 0.0]


# --- MSLR -------------------------------------------------------------------------------------


def test_mslr_moves_each_modality_by_its_own_learning_rate():
    model = TinyStudent("late", bias=True)
    method = MSLR(**COMMON, options=MSLRParams(lr={"a": 1e-3, "v": 1e-2}))
    opt = build_optimizer(toy_params(lr=0.5, momentum=0.0, weight_decay=0.0), method.param_groups(model))
    before = {m: [p.detach().clone() for p in modality_parameters(model, m)] for m in MODS}
    for p in model.parameters():
        p.grad = torch.ones_like(p)
    opt.step()
    for m, lr in (("a", 1e-3), ("v", 1e-2)):
        for p, q in zip(modality_parameters(model, m), before[m]):
            assert torch.allclose(q - p, torch.full_like(p, lr))
    assert {g["modality"] for g in opt.param_groups} == {"a", "v"}  # late fusion: nothing shared


def test_mslr_dynamic_factor_by_hand_and_every_window_epochs():
    assert dynamic_factor([0.5, 0.5, 0.5, 0.5, 0.6], 5) == pytest.approx(0.6 / 0.52) == pytest.approx(1.1538, abs=1e-4)
    assert dynamic_factor([0.9, 0.5, 0.5, 0.5, 0.5, 0.6], 5) == pytest.approx(0.6 / 0.52)  # only the last window
    model = TinyStudent("late")
    method = MSLR(**COMMON, options=MSLRParams(lr={"a": 1e-3}, strategy="dynamic", window=5))
    opt = torch.optim.SGD(method.param_groups(model), lr=0.01)
    accs = {"a": [0.5, 0.5, 0.5, 0.5, 0.6], "v": [0.4] * 5}
    for epoch in range(1, 6):
        logs = method.end_epoch(model, opt, epoch, {f"val_acc_{m}": accs[m][epoch - 1] for m in MODS})
        if epoch == 4:
            assert logs == {"lr_a": 1e-3, "lr_v": 0.01}  # unchanged between windows
    assert logs["lr_a"] == pytest.approx(1e-3 * 0.6 / 0.52) and logs["lr_v"] == pytest.approx(0.01)
    restored = MSLR(**COMMON, options=MSLRParams(strategy="dynamic"))
    restored.load_state_dict(method.state_dict())
    assert restored.history == accs


def test_mslr_loss_is_on_the_sum_of_the_heads_and_groups_any_k():
    z = {"a": torch.tensor([[LN3, 0.0]]), "v": torch.tensor([[LN3, 0.0]])}
    out = StudentOutput(features={}, logits=z, fused=(z["a"] + z["v"]) / 2)
    parts = MSLR(**COMMON).loss(out, Batch(torch.arange(1), {}, torch.tensor([0])))
    assert float(parts.total) == pytest.approx(-math.log(9 / 10))  # softmax(2 ln 3, 0)[0] = 9/10, not 3/4
    k3 = ("a", "v", "t")
    groups = MSLR(**{**COMMON, "modalities": k3}, options=MSLRParams(lr={"t": 0.2})).param_groups(
        TinyStudent("late", modalities=k3)
    )
    assert [(g["modality"], g.get("lr")) for g in groups] == [("a", None), ("v", None), ("t", 0.2)]
    with pytest.raises(ValueError, match="not modalities of this dataset"):
        MSLR(**COMMON, options=MSLRParams(lr={"audio": 0.1}))


# --- ReconBoost -------------------------------------------------------------------------------


def test_reconboost_boosting_loss_and_gradient_by_hand():
    z = torch.zeros(1, 2, requires_grad=True)
    loss = boosting_loss(z, torch.zeros(1, 2), torch.tensor([0]), beta=1.0, w1=5.0, w2=1.0)
    assert float(loss.detach()) == pytest.approx(1.5596, abs=1e-4)
    assert float(loss.detach()) == pytest.approx(0.5 * (5 - 0.5) * math.log(2), abs=1e-6)
    (grad,) = torch.autograd.grad(loss, z)
    assert torch.allclose(grad, torch.tensor([[-1.125, 1.125]]))  # 2.25 (softmax - onehot)


def test_reconboost_weight_follows_the_others_confidence():
    """The rule acts: a sample the ensemble already gets right weighs less than one it gets wrong."""
    z, y = torch.zeros(1, 2), torch.tensor([0])
    right = boosting_loss(z, torch.tensor([[5.0, 0.0]]), y, 1.0, 5.0, 1.0)
    wrong = boosting_loss(z, torch.tensor([[0.0, 5.0]]), y, 1.0, 5.0, 1.0)
    assert float(right) < float(wrong)
    assert float(boosting_loss(z, torch.tensor([[5.0, 0.0]]), y, 0.0, 5.0, 1.0)) == pytest.approx(1.5596, abs=1e-4)


def test_reconboost_consolidation_gradient_reaches_only_the_current_learner():
    current = torch.tensor([[1.0, 0.0]], requires_grad=True)
    previous = torch.tensor([[0.0, 1.0]], requires_grad=True)
    g_cur, g_prev = torch.autograd.grad(consolidation_loss(current, previous), [current, previous], allow_unused=True)
    assert g_prev is None and float(g_cur.abs().sum()) > 0  # the official code's detached term would give none


def test_reconboost_schedule_is_a_function_of_the_epoch_for_any_k():
    o = ReconBoostParams(epochs_per_stage=2, correct_epochs=1)
    got = [phase(e, ["a", "v", "t"], o) for e in range(1, 11)]
    assert [(p.modality, p.rectify) for p in got] == [
        ("a", False), ("a", False), ("a", True), ("v", False), ("v", False), ("v", True),
        ("t", False), ("t", False), ("t", True), ("a", False),
    ]  # fmt: skip
    assert got[0].ensemble == ("a",) and got[0].previous is None
    assert got[3].ensemble == ("a", "v") and got[3].previous == "a"
    assert got[9].ensemble == ("a", "v", "t") and got[9].previous == "t"


def test_reconboost_stage_trains_one_encoder_and_rectification_all_and_beta():
    model, batch = TinyStudent("shared", classes=3), tiny_batch()
    method = ReconBoost(**COMMON, options=ReconBoostParams(epochs_per_stage=1, correct_epochs=1))
    opt = torch.optim.SGD(method.param_groups(model), lr=0.1)
    v_before = model.encoders["v"].weight.detach().clone()
    logs, _ = method.train_step(model, batch, opt, 1)  # the audio stage: video untouched
    assert torch.equal(model.encoders["v"].weight, v_before) and model.encoders["v"].weight.grad is None
    assert logs["reconboost_stage_a"] == 1.0 and logs["reconboost_rectify"] == 0.0
    assert method.boost.grad is None and float(method.boost.detach()) == 1.0
    logs, _ = method.train_step(model, batch, opt, 4)  # rectification after video's stage: all train, beta too
    assert not torch.equal(model.encoders["v"].weight, v_before) and logs["reconboost_rectify"] == 1.0
    assert float(method.boost.detach()) != 1.0
    restored = ReconBoost(**COMMON)
    restored.load_state_dict(method.state_dict())
    assert float(restored.boost.detach()) == pytest.approx(float(method.boost.detach()))
    assert method.student_fusion("late") == "shared"


# --- every method through the engine ---------------------------------------------------------


@pytest.fixture(scope="module")
def toy_run(tmp_path_factory):
    """A small dataset with trained teachers and their score cache, shared by the engine runs."""
    tmp = tmp_path_factory.mktemp("table1")
    h5 = write_toy_dataset(tmp / "toy.h5", n={"train": 24, "val": 8, "test": 8})
    params = toy_params(teacher={"epochs": 1}, tau1=1, tau2=1)
    train_teachers.run(params, "toy", 0, h5, tmp / "teachers", tmp / "resume")
    score.run(params, h5, tmp / "teachers", tmp / "scores.h5", tmp / "tm.json", tmp / "c.png")
    return params, tmp, h5


def run_and_evaluate(toy_run, name: str, params=None) -> tuple[list[dict], dict, dict]:
    """Train `name` on the toy data, then evaluate its checkpoint on test: (log, checkpoint, metrics)."""
    base, tmp, h5 = toy_run
    params = params or base
    out = tmp / name
    train_student.run(
        params, "toy", name, 0, h5, tmp / "scores.h5", tmp / "teachers", out / "student.pt", out / "log.json", out / "r"
    )
    result = evaluate.run(params, h5, tmp / "scores.h5", out / "student.pt", out / "metrics.json")
    assert set(result["test"]) == {"fused", "audio", "video"}
    assert 0 <= result["test"]["fused"]["accuracy"] <= 1
    return json.loads((out / "log.json").read_text()), checkpoint.load(out / "student.pt"), result


def test_dlmg_trains_in_the_engine(toy_run):
    log, state, _ = run_and_evaluate(toy_run, "dlmg")
    assert [r["epoch"] for r in log] == [1, 2]
    assert [r["dlmg_a1"] for r in log] == pytest.approx([0.205, 0.916])  # the whole schedule, stretched
    assert all(r["loss_align"] > 0 for r in log) and state["fusion"] == "late"


def test_ume_trains_nothing_and_evaluates_as_the_teachers_ensemble(toy_run):
    log, state, result = run_and_evaluate(toy_run, "ume")
    assert log == [] and state["best_epoch"] == 0 and state["fusion"] == "late"
    for m in ("audio", "video"):
        assert result["test"][m] == result["teacher"][m]  # the teachers' own predictions, unchanged
        assert result["feature_alignment"][m] == pytest.approx(1.0)


def test_pmr_trains_in_the_engine(toy_run):
    log, _, _ = run_and_evaluate(toy_run, "pmr")
    assert [r["epoch"] for r in log] == [1, 2]
    assert {"pmr_mass_audio", "pmr_mass_video", "loss_proto", "pmr_classes_seen"} <= set(log[0])
    assert max(r["loss_proto"] for r in log) > 0  # the prototype term acted inside real training


def test_mses_trains_in_the_engine_and_stops_a_modality(toy_run):
    params = toy_run[0].with_student_overrides({"mses.patience": 1})
    log, state, _ = run_and_evaluate(toy_run, "mses", params)
    assert [r["epoch"] for r in log] == [1, 2]
    assert {"mses_stopped_audio", "mses_stopped_video", "loss_uni_audio", "val_loss_video"} <= set(log[0])
    assert state["fusion"] == "late"


def test_mslr_trains_in_the_engine_with_its_own_rates(toy_run):
    params = toy_run[0].with_student_overrides(
        {"mslr.lr": {"audio": 0.001, "video": 0.02}, "mslr.strategy": "dynamic", "mslr.window": 2}
    )
    log, _, _ = run_and_evaluate(toy_run, "mslr", params)
    assert [r["epoch"] for r in log] == [1, 2]
    assert (log[0]["lr_audio"], log[0]["lr_video"]) == (0.001, 0.02)
    assert log[1]["lr_audio"] != 0.001 or log[1]["val_acc_audio"] == log[0]["val_acc_audio"]  # rescaled at epoch 2


def test_reconboost_trains_in_the_engine(toy_run):
    params = toy_run[0].with_student_overrides({"reconboost.epochs_per_stage": 1, "reconboost.correct_epochs": 1})
    log, state, _ = run_and_evaluate(toy_run, "reconboost", params)
    assert [(r["epoch"], r["reconboost_rectify"]) for r in log] == [(1, 0.0), (2, 1.0)]
    assert log[0]["reconboost_stage_audio"] == 1.0 and "loss_boost" in log[0] and "reconboost_beta" in log[1]
    assert state["fusion"] == "shared"


# --- exact resume: method state and the engine's hooks across an interruption -------------------


@pytest.mark.parametrize(
    "name, overrides",
    [
        ("pmr", {}),
        ("mses", {"mses.patience": 1, "mses.restore": True}),
        ("mslr", {"mslr.strategy": "dynamic", "mslr.window": 1, "mslr.lr": {"audio": 0.02}}),
        ("reconboost", {"reconboost.epochs_per_stage": 1, "reconboost.correct_epochs": 1}),
        ("dlmg", {}),
    ],
)
def test_resume_after_interruption_matches_uninterrupted_run(toy_h5, tmp_path, name, overrides):
    params = toy_params().with_student_overrides(overrides)  # 4 epochs
    meta = read_meta(toy_h5)
    tr, va = load_split(toy_h5, "train"), load_split(toy_h5, "val")
    norm = Normalizer.fit(tr, meta.task)
    train, val = SplitTensors(tr, norm, torch.device("cpu")), SplitTensors(va, norm, torch.device("cpu"))
    args = (params, meta, {"audio": "small_cnn", "video": "small_cnn"}, name, 0, train, val, None, None)
    full_state, full = fit_student(*args, tmp_path / "r1", "fp")
    original = train.batches

    def dying(batch_size, shuffle_seed=None):
        if shuffle_seed == 3:  # seed 0, epoch 3: die before the third epoch's first batch
            raise KeyboardInterrupt
        return original(batch_size, shuffle_seed=shuffle_seed)

    train.batches = dying
    with pytest.raises(KeyboardInterrupt):
        fit_student(*args, tmp_path / "r2", "fp")
    assert checkpoint.load(tmp_path / "r2" / "last.pt")["epoch"] == 2
    train.batches = original
    resumed_state, resumed = fit_student(*args, tmp_path / "r2", "fp")
    assert [r["epoch"] for r in resumed.history] == [1, 2, 3, 4]
    for a, b in zip(full.history, resumed.history, strict=True):
        assert a == pytest.approx(b, rel=1e-5, abs=1e-7)
    for k, v in full_state["state_dict"].items():
        assert torch.allclose(v.float(), resumed_state["state_dict"][k].float(), atol=1e-6), k
