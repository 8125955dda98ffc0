"""Linear probes of student encoders: why they exist (late-fusion heads can trade class offsets without
changing any fused prediction) and that they measure the encoder, fitted on train only."""

from __future__ import annotations

import numpy as np
import torch

from g2d.models.fusion import build_fusion
from g2d.training.probe import fit_probe


def _blobs(n: int, classes: int, dim: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Nonnegative features (like pooled ReLU outputs) with a large common component and a class signal."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, n)
    centres = np.random.default_rng(99).normal(size=(classes, dim))
    x = np.abs(5.0 + centres[y] + 0.5 * rng.normal(size=(n, dim)))
    return x.astype(np.float32), y


def test_late_fusion_heads_can_trade_class_offsets_without_changing_the_fused_output() -> None:
    torch.manual_seed(0)
    fusion = build_fusion("late", [4, 4], 3)
    feats = [torch.rand(8, 4), torch.rand(8, 4)]
    fused, per_mod = fusion(feats)
    delta = torch.tensor([3.0, -1.0, -2.0])
    with torch.no_grad():
        fusion.heads[0].bias += delta
        fusion.heads[1].bias -= delta
    fused2, per_mod2 = fusion(feats)
    assert torch.allclose(fused, fused2, atol=1e-6)  # no loss term can tell the two apart ...
    assert not torch.allclose(per_mod[0], per_mod2[0])  # ... but each branch's own output moved
    assert torch.allclose(per_mod2[0] - per_mod[0], delta.expand(8, 3))


def test_probe_recovers_the_class_signal_and_ignores_head_offsets() -> None:
    x, y = _blobs(600, 3, 6, seed=0)
    xv, yv = _blobs(200, 3, 6, seed=1)
    xt, yt = _blobs(300, 3, 6, seed=2)
    probe = fit_probe(x, y, xv, yv, "classification", classes=3)
    accuracy = float((probe.logits(xt).argmax(axis=1) == yt).mean())
    assert accuracy > 0.95
    # a head that is right up to a per-class offset (what late fusion can drift into) is far worse alone
    offset = probe.logits(xt) + np.array([40.0, 0.0, 0.0])
    assert float((offset.argmax(axis=1) == yt).mean()) < 0.5


def test_probe_l2_is_chosen_on_validation_and_train_only_is_fitted() -> None:
    x, y = _blobs(300, 3, 6, seed=0)
    xv, yv = _blobs(100, 3, 6, seed=1)
    a = fit_probe(x, y, xv, yv, "classification", classes=3, l2_grid=(1e-3,))
    b = fit_probe(x, y, xv, yv, "classification", classes=3, l2_grid=(1e-3, 10.0))
    assert a.l2 == 1e-3 and b.l2 == 1e-3  # the heavy penalty loses on validation
    np.testing.assert_allclose(a.mean, x.mean(axis=0), rtol=1e-6)


def test_probe_subsamples_large_train_sets_deterministically() -> None:
    x, y = _blobs(500, 3, 4, seed=0)
    xv, yv = _blobs(100, 3, 4, seed=1)
    a = fit_probe(x, y, xv, yv, "classification", classes=3, max_rows=200, seed=5)
    b = fit_probe(x, y, xv, yv, "classification", classes=3, max_rows=200, seed=5)
    np.testing.assert_array_equal(a.weight, b.weight)
    assert not np.allclose(a.mean, x.mean(axis=0))


def test_regression_probe_predicts_the_scaled_target() -> None:
    rng = np.random.default_rng(0)
    w = rng.normal(size=5)
    x = rng.normal(size=(400, 5))
    y = 1 / (1 + np.exp(-(x @ w) / 3))  # in (0, 1), like a [0, 1]-scaled target
    xv = rng.normal(size=(100, 5))
    yv = 1 / (1 + np.exp(-(xv @ w) / 3))
    probe = fit_probe(x, y, xv, yv, "regression", classes=1)
    pred = 1 / (1 + np.exp(-probe.logits(xv).reshape(-1)))
    assert np.corrcoef(pred, yv)[0, 1] > 0.95
    assert probe.logits(xv).shape == (100, 1)
