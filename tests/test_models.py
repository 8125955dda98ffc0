"""Encoders, fusions and the student: shapes, per-modality logits, k >= 2 modalities."""

import pytest
import torch

from g2d.models.encoders import build_encoder
from g2d.models.fusion import build_fusion
from g2d.models.student import MultimodalStudent, UnimodalModel


@pytest.mark.parametrize("name", ["small_cnn", "resnet18"])
def test_encoders_take_spectrograms_and_frame_stacks(name):
    enc, dim = build_encoder(name, (1, 33, 20))
    assert enc(torch.randn(2, 1, 33, 20)).shape == (2, dim)
    enc, dim = build_encoder(name, (3, 3, 32, 32))
    assert enc(torch.randn(2, 3, 3, 32, 32)).shape == (2, dim)


def test_frame_pooling_averages_frames():
    enc, _ = build_encoder("small_cnn", (2, 3, 16, 16))
    enc.eval()
    frame = torch.randn(1, 3, 16, 16)
    stacked = torch.stack([frame, frame], dim=1)
    assert torch.allclose(enc(stacked), enc(frame), atol=1e-6)


def test_unknown_names_list_the_choices():
    with pytest.raises(KeyError, match="small_cnn"):
        build_encoder("vit", (1, 8, 8))
    with pytest.raises(KeyError, match="late"):
        build_fusion("film", [4, 4], 3)


@pytest.mark.parametrize("fusion", ["late", "sum", "concat"])
def test_per_modality_logits_relate_to_fused(fusion):
    torch.manual_seed(0)
    f = build_fusion(fusion, [4, 4, 4], 3)
    feats = [torch.randn(5, 4) for _ in range(3)]
    fused, per_mod = f(feats)
    assert fused.shape == (5, 3) and len(per_mod) == 3
    combined = torch.stack(per_mod).mean(0) if fusion == "late" else torch.stack(per_mod).sum(0)
    assert torch.allclose(combined, fused, atol=1e-5)


def test_concat_per_modality_logits_use_their_weight_slice():
    f = build_fusion("concat", [2, 3], 1)
    with torch.no_grad():
        f.head.weight.copy_(torch.tensor([[1.0, 2.0, 10.0, 20.0, 30.0]]))
        f.head.bias.fill_(4.0)
    fused, (a, b) = f([torch.tensor([[1.0, 1.0]]), torch.tensor([[1.0, 0.0, 0.0]])])
    assert a.item() == pytest.approx(3.0 + 2.0) and b.item() == pytest.approx(10.0 + 2.0)
    assert fused.item() == pytest.approx(17.0)


def test_student_with_three_modalities():
    shapes = {"a": (1, 16, 12), "v": (2, 3, 16, 16), "t": (1, 8, 8)}
    s = MultimodalStudent(["a", "v", "t"], {m: "small_cnn" for m in shapes}, shapes, "late", 4)
    out = s({m: torch.randn(3, *shape) for m, shape in shapes.items()})
    assert out.fused.shape == (3, 4)
    assert set(out.logits) == set(out.features) == {"a", "v", "t"}
    assert {id(p) for p in s.encoder_parameters("a")} == {id(p) for p in s.encoders["a"].parameters()}


def test_student_needs_two_modalities():
    with pytest.raises(ValueError):
        MultimodalStudent(["a"], {"a": "small_cnn"}, {"a": (1, 8, 8)}, "late", 2)


def test_teacher_returns_features_and_logits():
    t = UnimodalModel("small_cnn", (1, 8, 8), 5)
    feats, logits = t(torch.randn(2, 1, 8, 8))
    assert logits.shape == (2, 5) and feats.shape[0] == 2
