"""Encoders, fusions and the student: shapes, per-modality logits, k >= 2 modalities."""

import pytest
import torch

from g2d.models.encoders import build_encoder
from g2d.models.fusion import build_fusion
from g2d.models.student import MultimodalStudent, UnimodalModel
from g2d.training.student import build_student


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
        build_fusion("tensor_fusion", [4, 4], 3)


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


MIXING = ["film", "gated", "cross_attention"]


@pytest.mark.parametrize("fusion", MIXING + ["shared", "shared_entropy"])
@pytest.mark.parametrize("k", [2, 3])
def test_new_fusions_give_fused_and_per_modality_logits_for_k_modalities(fusion, k):
    torch.manual_seed(0)
    f = build_fusion(fusion, [4] * k, 3)
    feats = [torch.randn(5, 4, requires_grad=True) for _ in range(k)]
    fused, per_mod = f(feats)
    assert fused.shape == (5, 3) and len(per_mod) == k and all(p.shape == (5, 3) for p in per_mod)
    fused.sum().backward()
    assert all(x.grad is not None and x.grad.abs().sum() > 0 for x in feats)


@pytest.mark.parametrize("fusion", MIXING)
def test_mixing_fusions_per_modality_logits_zero_the_other_features(fusion):
    torch.manual_seed(0)
    f = build_fusion(fusion, [4, 6, 5], 3)
    feats = [torch.randn(2, d) for d in (4, 6, 5)]
    _, per_mod = f(feats)
    alone = f([feats[0], torch.zeros(2, 6), torch.zeros(2, 5)])[0]
    assert torch.allclose(per_mod[0], alone, atol=1e-6)
    assert not torch.allclose(per_mod[0], per_mod[1])


def _film(modulated: str | None, dims: list[int], weight: list[list[float]], bias: list[float]):
    """A FiLM fusion with given conditioning weights and an identity-sum head (weight 1, bias 0)."""
    f = build_fusion("film", dims, 1, **({} if modulated is None else {"modulated": modulated}))
    with torch.no_grad():
        f.film.weight.copy_(torch.tensor(weight))
        f.film.bias.copy_(torch.tensor(bias))
        f.head.weight.fill_(1.0)
        f.head.bias.fill_(0.0)
    return f


@pytest.mark.parametrize("modulated", [None, "last"])
def test_film_default_follows_the_reference_audio_conditions_video(modulated):
    f = _film(modulated, [1, 1], [[2.0], [3.0]], [1.0, 0.0])  # gamma = 2 a + 1, beta = 3 a
    fused, (a, v) = f([torch.tensor([[2.0]]), torch.tensor([[1.0]])])  # audio 2, video 1
    assert fused.item() == pytest.approx(5.0 * 1.0 + 6.0)
    assert a.item() == pytest.approx(6.0)  # video zeroed: beta(a) alone
    assert v.item() == pytest.approx(1.0)  # audio zeroed: gamma = 1, beta = 0


def test_film_first_modulates_the_first_modality_by_the_others():
    f = _film("first", [1, 1], [[2.0], [3.0]], [1.0, 0.0])  # gamma = 2 v + 1, beta = 3 v
    fused, (a, v) = f([torch.tensor([[2.0]]), torch.tensor([[1.0]])])
    assert fused.item() == pytest.approx(3.0 * 2.0 + 3.0)
    assert a.item() == pytest.approx(2.0) and v.item() == pytest.approx(3.0)


def test_film_with_three_modalities_modulates_the_last_by_the_others_concatenated():
    f = _film("last", [1, 2, 1], [[1.0, 1.0, 1.0], [0.0, 0.0, 0.0]], [0.0, 0.0])  # gamma = a + v1 + v2
    assert (f.film.in_features, f.film.out_features) == (3, 2)
    fused, _ = f([torch.tensor([[2.0]]), torch.tensor([[3.0, 1.0]]), torch.tensor([[4.0]])])
    assert fused.item() == pytest.approx((2.0 + 3.0 + 1.0) * 4.0)
    first = build_fusion("film", [1, 2, 3], 1, modulated="first")
    assert (first.film.in_features, first.film.out_features, first.head.in_features) == (5, 2, 1)


def _gated(form: str | None, k: int):
    f = build_fusion("gated", [1] * k, 1, **({} if form is None else {"form": form}))
    with torch.no_grad():
        for lin in (*f.proj, f.head):
            lin.weight.fill_(1.0)
            lin.bias.fill_(0.0)
    return f


def s(x: float) -> float:
    return torch.sigmoid(torch.tensor(x)).item()


@pytest.mark.parametrize("form", [None, "symmetric"])
def test_gated_default_is_symmetric_by_hand(form):
    fused, _ = _gated(form, 2)([torch.tensor([[1.0]]), torch.tensor([[2.0]])])
    assert fused.item() == pytest.approx(1.0 * s(2.0) + 2.0 * s(1.0))


def test_gated_one_way_is_the_reference_form_by_hand():
    fused, (a, v) = _gated("one_way", 2)([torch.tensor([[1.0]]), torch.tensor([[2.0]])])
    assert fused.item() == pytest.approx(s(1.0) * 2.0)  # sigmoid(W_a a) gates W_v v
    assert a.item() == pytest.approx(0.0) and v.item() == pytest.approx(0.5 * 2.0)  # the other zeroed
    fused, _ = _gated("one_way", 3)([torch.tensor([[1.0]]), torch.tensor([[2.0]]), torch.tensor([[4.0]])])
    assert fused.item() == pytest.approx(s(1.0) * (2.0 + 4.0) / 2)  # the first gates the others' mean


def test_fusion_options_are_checked_and_reach_the_student():
    with pytest.raises(ValueError, match="film.modulated: 'middle' is not allowed; choose one of last, first"):
        build_fusion("film", [2, 2], 3, modulated="middle")
    with pytest.raises(ValueError, match="gated.form: 'both' is not allowed; choose one of symmetric, one_way"):
        build_fusion("gated", [2, 2], 3, form="both")
    shapes = {"a": (1, 8, 8), "v": (1, 8, 8)}
    student = MultimodalStudent(["a", "v"], {m: "small_cnn" for m in shapes}, shapes, "film", 3, {"modulated": "first"})
    assert student.fusion.target == 0
    assert MultimodalStudent(["a", "v"], {m: "small_cnn" for m in shapes}, shapes, "film", 3).fusion.target == 1
    state = {
        "modalities": ["a", "v"],
        "encoders": {m: "small_cnn" for m in shapes},
        "fusion": "film",
        "input_shapes": {m: list(x) for m, x in shapes.items()},
        "num_outputs": 3,
        "fusion_options": {"modulated": "first"},
        "state_dict": student.state_dict(),
    }
    assert build_student(state, torch.device("cpu")).fusion.target == 0
    legacy = {k: v for k, v in state.items() if k != "fusion_options"}  # written before options were recorded
    assert build_student(legacy, torch.device("cpu")).fusion.target == 0


def test_params_give_each_fusion_its_own_section():
    from g2d.config.params import Params
    from g2d.models.options import FiLMParams, GatedParams

    p = Params(
        seeds=(0,),
        datasets={},
        methods=("joint",),
        tau1=1,
        tau2=1,
        sections={"film": FiLMParams("first"), "gated": GatedParams("one_way")},
    )
    assert p.fusion_options("film") == {"modulated": "first"} and p.fusion_options("gated") == {"form": "one_way"}
    assert p.fusion_options("late") == {} and p.fusion_options("cross_attention") == {}


def test_fusion_errors_name_the_fusion_and_its_constraint():
    with pytest.raises(ValueError, match="fusion cross_attention needs k >= 2 modalities, got k=1"):
        build_fusion("cross_attention", [4], 3)
    with pytest.raises(ValueError, match="fusion shared .*equal feature sizes"):
        build_fusion("shared", [4, 5], 3)
    with pytest.raises(ValueError, match="fusion shared_entropy .*mla.inference: fixed"):
        build_fusion("shared_entropy", [4, 4], 1)


@pytest.mark.parametrize("fusion", MIXING)
def test_student_with_mixing_fusion_and_three_modalities(fusion):
    shapes = {"a": (1, 16, 12), "v": (2, 3, 16, 16), "t": (1, 8, 8)}
    s = MultimodalStudent(["a", "v", "t"], {m: "small_cnn" for m in shapes}, shapes, fusion, 4)
    out = s({m: torch.randn(2, *shape) for m, shape in shapes.items()})
    assert out.fused.shape == (2, 4) and set(out.logits) == {"a", "v", "t"}


def test_reference_init_zero_biases_xavier_heads_kaiming_convs():
    from g2d.models.student import MultimodalStudent, initialise

    torch.manual_seed(0)
    built = MultimodalStudent(
        ["a", "v"], {"a": "small_cnn", "v": "small_cnn"}, {"a": (1, 16, 16), "v": (3, 16, 16)}, "late", 10
    )
    before = {k: v.clone() for k, v in built.state_dict().items()}
    assert initialise(built, "torch") is built
    assert all(torch.equal(before[k], v) for k, v in built.state_dict().items())  # torch: left as built
    initialise(built, "reference")
    heads = built.fusion.heads
    assert all(torch.count_nonzero(h.bias) == 0 for h in heads)  # PyTorch's default gives random biases
    w = torch.cat([h.weight.flatten() for h in heads])
    assert (
        abs(float(w.detach().std()) - (2 / (64 + 10)) ** 0.5) < 0.03
    )  # Xavier normal: std sqrt(2 / (fan_in + fan_out))
    conv = built.encoders["a"].backbone.body[4]  # second conv: 16 -> 32 channels, 3x3
    assert abs(float(conv.weight.detach().std()) - (2 / (32 * 9)) ** 0.5) < 0.01  # Kaiming normal, fan_out
    with pytest.raises(ValueError, match="unknown init 'xavier'; choose one of reference, torch"):
        initialise(built, "xavier")


def test_the_sequence_transformer_ignores_padding_steps():
    from g2d.models.encoders import SequenceTransformer, build_encoder

    torch.manual_seed(0)
    encoder, dim = build_encoder({"name": "sequence_transformer", "d_model": 8, "heads": 2, "layers": 1}, (6, 3))
    assert dim == 8
    encoder.eval()
    x = torch.randn(2, 4, 3)
    padded = torch.cat([x, torch.full((2, 2, 3), -0.7)], dim=1)  # two padding steps: every value the same
    assert SequenceTransformer.padding(padded).tolist() == [[False] * 4 + [True] * 2] * 2
    torch.testing.assert_close(encoder(padded), encoder(x))  # masked out of attention and of the mean
    assert not SequenceTransformer.padding(torch.zeros(1, 3, 2)).any()  # all padding: every step kept
    with pytest.raises(ValueError, match=r"reads sequences \(T, D\), got samples of shape \(1, 6, 3\)"):
        build_encoder("sequence_transformer", (1, 6, 3))
    with pytest.raises(ValueError, match=r"sequences need a sequence encoder \(sequence_transformer\)"):
        build_encoder("small_cnn", (6, 3))


def _text_encoder(**options):
    from g2d.models.encoders import build_encoder

    torch.manual_seed(0)
    spec = {"name": "text_transformer", "dim": 8, "heads": 2, "layers": 1, "vocab_size": 10, **options}
    encoder, dim = build_encoder(spec, (4,))
    return encoder.eval(), dim


def test_the_text_transformer_masks_padding_ids_wherever_they_are():
    encoder, dim = _text_encoder()
    assert dim == 8
    ids = torch.tensor([[3, 1, 4, 1], [5, 9, 2, 6]])
    out = encoder(ids)
    assert out.shape == (2, 8)
    zeros = torch.zeros(2, 3, dtype=torch.long)
    torch.testing.assert_close(encoder(torch.cat([ids, zeros], dim=1)), out)  # pads at the end
    torch.testing.assert_close(encoder(torch.cat([zeros, ids], dim=1)), out)  # pads in front (MulT-style)
    changed = ids.clone()
    changed[0, 2] = 7  # a real token: that row changes, the other does not
    new = encoder(changed)
    assert not torch.allclose(new[0], out[0]) and torch.equal(new[1], out[1])
    assert torch.isfinite(encoder(torch.zeros(1, 4, dtype=torch.long))).all()  # all padding: no 0/0
    with pytest.raises(TypeError, match=r"reads token ids, got torch.float32 inputs; declare the modality"):
        encoder(ids.float())


def test_the_text_transformer_takes_its_vocabulary_from_the_dataset():
    from g2d.config.schema import ConfigError
    from g2d.models import resolve_encoder
    from g2d.models.encoders import build_encoder

    spec = {"name": "text_transformer", "dim": 8, "heads": 2}
    resolved = resolve_encoder(spec, "text", {"text": 12}, "datasets.d.encoders.text")
    assert resolved == {**spec, "vocab_size": 12}
    encoder, _ = build_encoder(resolved, (5,))
    assert encoder.embed.num_embeddings == 12
    assert resolve_encoder("text_transformer", "text", {"text": 3})["vocab_size"] == 3
    assert resolve_encoder({**spec, "vocab_size": 20}, "text", {"text": 12})["vocab_size"] == 20  # room to spare
    with pytest.raises(ConfigError, match=r"datasets.d.encoders.text.vocab_size: 5, but text's ids reach 11"):
        resolve_encoder({**spec, "vocab_size": 5}, "text", {"text": 12}, "datasets.d.encoders.text")
    with pytest.raises(ConfigError, match=r"text holds token ids .*use text_transformer"):
        resolve_encoder("sequence_transformer", "text", {"text": 12})
    with pytest.raises(ConfigError, match=r"text_transformer reads token ids, but audio holds features"):
        resolve_encoder(spec, "audio", {"text": 12})
    assert resolve_encoder("small_cnn", "audio", {"text": 12}) == "small_cnn"
    with pytest.raises(ValueError, match=r"reads token ids \(T,\), got samples of shape \(5, 3\)"):
        build_encoder(resolved, (5, 3))
    with pytest.raises(ValueError, match="needs vocab_size"):
        build_encoder(spec, (5,))


def test_the_sequence_transformer_ignores_all_zero_steps_after_standardisation():
    """MulT-style aligned features pad with all-zero steps, in front; standardised with the modality's
    train mean and std they become one constant, which the encoder masks, positions included."""
    import numpy as np

    from g2d.io.dataset_file import SplitData
    from g2d.models.encoders import build_encoder
    from g2d.training.data import Normalizer

    torch.manual_seed(0)
    encoder, _ = build_encoder({"name": "sequence_transformer", "d_model": 8, "heads": 2, "layers": 1}, (6, 3))
    encoder.eval()
    raw = np.random.default_rng(0).normal(size=(2, 4, 3)).astype(np.float32) + 1.0
    zeros = np.zeros((2, 2, 3), np.float32)
    front, back = np.concatenate([zeros, raw], 1), np.concatenate([raw, zeros], 1)
    norm = Normalizer.fit(SplitData({"seq": front}, np.zeros(2, np.int64), ["a", "b"]), "classification")
    out = encoder(norm.inputs("seq", front))
    torch.testing.assert_close(encoder(norm.inputs("seq", back)), out)
    torch.testing.assert_close(encoder(norm.inputs("seq", raw)), out)
    changed = front.copy()
    changed[0, 3, 1] += 1.0  # a value of a real step: its row changes
    assert not torch.allclose(encoder(norm.inputs("seq", changed))[0], out[0])
