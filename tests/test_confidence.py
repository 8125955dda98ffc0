"""Eq. 5 teacher confidence, classification and the regression variant."""

import math

import pytest
import torch

from g2d.methods.confidence import batch_confidence, sample_confidence, sample_sq_error


def test_classification_confidence_is_true_class_probability():
    logits = torch.tensor([[math.log(3.0), 0.0], [0.0, 0.0]])  # p = (0.75, 0.25), (0.5, 0.5)
    target = torch.tensor([0, 1])
    conf = sample_confidence(logits, target, "classification")
    assert conf.tolist() == pytest.approx([0.75, 0.5])
    assert batch_confidence(conf, None, "classification") == pytest.approx(0.625)


def test_regression_confidence_uses_batch_mse():
    logits = torch.tensor([[0.0], [0.0]])  # sigmoid 0.5
    target = torch.tensor([1.0, 0.5])  # squared errors 0.25 and 0
    sq = sample_sq_error(logits, target)
    assert sq.tolist() == pytest.approx([0.25, 0.0])
    # rho = 1 / (1 + mean squared error), not the mean of per-sample 1 / (1 + se)
    assert batch_confidence(sample_confidence(logits, target, "regression"), sq, "regression") == pytest.approx(
        1 / 1.125
    )


def test_regression_batch_confidence_needs_errors():
    with pytest.raises(ValueError):
        batch_confidence(torch.tensor([0.5]), None, "regression")
