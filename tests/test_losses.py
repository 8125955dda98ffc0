"""G2D loss terms (Eq. 1-4) on tiny tensors whose values can be checked by hand."""

import math

import pytest
import torch

from g2d.methods.losses import feature_loss, g2d_loss, logit_loss, task_loss


def test_task_loss_classification_is_cross_entropy():
    fused = torch.tensor([[0.0, 0.0]])  # uniform over 2 classes
    assert task_loss(fused, torch.tensor([1]), "classification").item() == pytest.approx(math.log(2))


def test_task_loss_regression_is_mse_of_sigmoid():
    fused = torch.tensor([[0.0], [0.0]])  # sigmoid -> 0.5
    target = torch.tensor([1.0, 0.0])
    assert task_loss(fused, target, "regression").item() == pytest.approx(0.25)


def test_feature_loss_is_mean_over_elements():
    s = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    t = torch.tensor([[1.0, 0.0], [3.0, 2.0]])  # squared diffs 0, 4, 0, 4
    assert feature_loss(s, t).item() == pytest.approx(2.0)


def test_logit_loss_is_kl_teacher_to_student():
    # teacher p_t = (0.5, 0.5), student p_s = (0.8, 0.2) -> KL(p_t || p_s), not the reverse
    student = torch.log(torch.tensor([[0.8, 0.2]]))
    teacher = torch.tensor([[0.0, 0.0]])
    expected = 0.5 * math.log(0.5 / 0.8) + 0.5 * math.log(0.5 / 0.2)
    reverse = 0.8 * math.log(0.8 / 0.5) + 0.2 * math.log(0.2 / 0.5)
    got = logit_loss(student, teacher, "classification", 1.0).item()
    assert got == pytest.approx(expected, abs=1e-6)
    assert got != pytest.approx(reverse, abs=1e-3)


def test_logit_loss_temperature_squared_and_batchmean():
    student = torch.tensor([[2.0, 0.0], [0.0, 0.0]])
    teacher = torch.tensor([[0.0, 2.0], [0.0, 0.0]])  # second row: KL = 0
    T = 2.0
    p_t = torch.softmax(teacher[0] / T, 0)
    p_s = torch.softmax(student[0] / T, 0)
    kl_row0 = float((p_t * (p_t / p_s).log()).sum())
    expected = kl_row0 / 2 * T**2  # batch mean over 2 rows, times T^2
    assert logit_loss(student, teacher, "classification", T).item() == pytest.approx(expected, rel=1e-5)


def test_logit_loss_regression_is_mse_of_sigmoids():
    student = torch.tensor([[0.0]])
    teacher = torch.tensor([[math.log(3.0)]])  # sigmoid = 0.75
    assert logit_loss(student, teacher, "regression").item() == pytest.approx(0.0625)


def test_g2d_loss_combines_terms_with_alpha_beta():
    fused = torch.tensor([[0.0, 0.0]])
    target = torch.tensor([0])
    s_feat = {"a": torch.tensor([[1.0]]), "b": torch.tensor([[0.0]])}
    t_feat = {"a": torch.tensor([[0.0]]), "b": torch.tensor([[2.0]])}  # feat losses 1 and 4
    t_logit = {"a": torch.tensor([[0.0, 0.0]]), "b": torch.tensor([[0.0, 0.0]])}  # KL 0 (uniform = uniform)
    parts = g2d_loss(fused, s_feat, target, t_feat, t_logit, "classification", alpha=0.5, beta=3.0, temperature=1.0)
    assert parts.feat["a"].item() == pytest.approx(1.0)
    assert parts.feat["b"].item() == pytest.approx(4.0)
    assert parts.total.item() == pytest.approx(math.log(2) + 0.5 * 5.0 + 3.0 * 0.0)
    logs = parts.as_floats()
    assert set(logs) == {"loss", "loss_task", "loss_feat_a", "loss_feat_b", "loss_logit_a", "loss_logit_b"}


def test_g2d_logit_term_uses_fused_student_logits():
    fused = torch.tensor([[1.0, 0.0]], requires_grad=True)
    teacher = {"a": torch.tensor([[0.0, 1.0]])}
    parts = g2d_loss(fused, {}, torch.tensor([0]), {}, teacher, "classification", 1.0, 1.0, 1.0)
    expected = logit_loss(fused.detach(), teacher["a"], "classification", 1.0)
    assert parts.logit["a"].item() == pytest.approx(expected.item())
    parts.total.backward()
    assert fused.grad is not None


def test_g2d_loss_beta_weights_a_nonzero_kl():
    # fused uniform over 2 classes; teacher a says (0.8, 0.2): KL = 0.8 ln 1.6 + 0.2 ln 0.4, not zero
    fused = torch.tensor([[0.0, 0.0]])
    teacher = {"a": torch.log(torch.tensor([[0.8, 0.2]]))}
    kl = 0.8 * math.log(0.8 / 0.5) + 0.2 * math.log(0.2 / 0.5)
    assert kl > 0.1
    for beta in (0.0, 1.0, 2.5):
        parts = g2d_loss(
            fused, {}, torch.tensor([0]), {}, teacher, "classification", alpha=1.0, beta=beta, temperature=1.0
        )
        assert parts.logit["a"].item() == pytest.approx(kl, abs=1e-6)
        assert parts.total.item() == pytest.approx(math.log(2) + beta * kl, abs=1e-6)
