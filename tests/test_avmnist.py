"""AV-MNIST: the degradations' maths, both raw formats on small generated fixtures, and real data."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import h5py
import numpy as np
import pytest
import soundfile

from g2d.config.schema import ConfigError, parse
from g2d.datasets import RawDataError, avmnist
from g2d.io.dataset_file import load_split, read_meta
from g2d.transforms.audio import centre_fit, log_mel_spectrogram
from g2d.transforms.degrade import fit_pca, pink_noise, scale_to_snr, snr_db, white_noise

from conftest import SHARED_DATA

SPEAKERS = ("anna", "bert", "carl")


# --------------------------------------------------------------------------------------------- maths


def axis_cloud() -> np.ndarray:
    """Points at +-3 on x, +-2 on y, +-1 on z: variances 9, 4, 1 along the axes (energy 9/14, 4/14, 1/14)."""
    rows = []
    for axis, scale in enumerate((3.0, 2.0, 1.0)):
        for sign in (1, -1):
            row = np.zeros(3)
            row[axis] = sign * scale
            rows.append(row)
    return np.array(rows)


def test_pca_keeps_the_asked_fraction_of_components() -> None:
    pca = fit_pca(np.random.default_rng(0).normal(size=(200, 100)), keep=0.25, by="components")
    assert pca.n_components == 25 and pca.components.shape == (25, 100)
    assert np.allclose(pca.components @ pca.components.T, np.eye(25), atol=1e-8)


def test_pca_by_energy_takes_the_fewest_components_reaching_the_fraction() -> None:
    x = axis_cloud()
    assert fit_pca(x, keep=0.6, by="energy").n_components == 1  # 9/14 = 0.64
    two = fit_pca(x, keep=0.7, by="energy")  # 13/14 = 0.93
    assert two.n_components == 2 and two.energy_kept == pytest.approx(13 / 14)


def test_pca_degrade_drops_the_discarded_directions() -> None:
    pca = fit_pca(axis_cloud(), keep=0.6, by="energy")
    out = pca.degrade(np.array([[1.0, 5.0, -7.0]]))
    assert np.allclose(out, [[1.0, 0.0, 0.0]], atol=1e-6)  # only x survives; the mean is 0


@pytest.mark.parametrize("make", [white_noise, pink_noise])
@pytest.mark.parametrize("target", [-6.0, 0.0, 10.0])
def test_noise_is_mixed_at_the_asked_snr(make, target: float) -> None:
    rng = np.random.default_rng(1)
    speech = np.sin(np.linspace(0, 60, 3000)) * 0.3
    noise = scale_to_snr(speech, make(rng, 8000), target)
    assert snr_db(speech, noise) == pytest.approx(target, abs=1e-9)


def test_pink_noise_power_falls_as_one_over_f() -> None:
    x = pink_noise(np.random.default_rng(2), 2**16)
    power = np.abs(np.fft.rfft(x)) ** 2
    f = np.arange(power.size)
    bands = [(10, 100), (100, 1000), (1000, 10000)]
    per_decade = [power[(f >= lo) & (f < hi)].sum() for lo, hi in bands]
    # 1/f: every decade holds the same power (white noise would grow tenfold per decade).
    assert max(per_decade) / min(per_decade) < 1.3


def test_centre_fit_pads_and_crops_around_the_middle() -> None:
    window, where = centre_fit(np.array([1.0, 2.0]), 6)
    assert window.tolist() == [0, 0, 1, 2, 0, 0] and (where.start, where.stop) == (2, 4)
    window, where = centre_fit(np.arange(10.0), 4)
    assert window.tolist() == [3, 4, 5, 6] and (where.start, where.stop) == (0, 4)


def test_log_mel_has_the_asked_square_shape() -> None:
    wave = np.random.default_rng(0).normal(size=8000).astype(np.float32) * 0.1
    assert log_mel_spectrogram(wave, 8000, 512, 112, 112).shape == (112, 112)
    assert log_mel_spectrogram(wave, 8000, 256, 20, 33).shape == (20, 33)


# --------------------------------------------------------------------------------------------- fixtures


def write_idx(path: Path, array: np.ndarray) -> None:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    with gzip.open(path, "wb") as fh:
        fh.write(header + array.astype(np.uint8).tobytes())


def write_build_layout(root: Path, n_train: int = 40, n_test: int = 20, takes: int = 2) -> Path:
    """MNIST-shaped IDX files and FSDD-named tone recordings.

    Training images draw only on the left half of the frame; test images also on the right half,
    so a PCA that saw test images would keep right-half content.
    """
    rng = np.random.default_rng(0)
    (root / "mnist").mkdir(parents=True)
    images = {}
    for split, n in (("train", n_train), ("t10k", n_test)):
        x = np.zeros((n, 28, 28), dtype=np.uint8)
        x[:, :, :14] = rng.integers(0, 256, size=(n, 28, 14))
        if split == "t10k":
            x[:, :, 14:] = 255
        images[split] = x
        write_idx(root / f"mnist/{split}-images-idx3-ubyte.gz", x)
        write_idx(root / f"mnist/{split}-labels-idx1-ubyte.gz", np.arange(n) % 10)
    rec = root / "fsdd/recordings"
    rec.mkdir(parents=True)
    t = np.arange(2400) / 8000
    for speaker_no, speaker in enumerate(SPEAKERS):
        for digit in range(10):
            for take in range(takes):
                tone = 0.4 * np.sin(2 * np.pi * (200 + 80 * digit + 10 * speaker_no) * t)
                soundfile.write(rec / f"{digit}_{speaker}_{take}.wav", tone, 8000, subtype="PCM_16")
    return root


def build_params(**overrides) -> avmnist.Params:
    section = {
        "split": {"val_speakers": ["bert"], "test_speakers": ["carl"], "val_fraction": 0.25},
        "audio": {"n_mels": 16, "frames": 12, "n_fft": 256, "duration": 0.5},
        "pca": {"keep": 1.0},
        "noise": {"snr_db": 20.0},
    }
    section.update(overrides)
    return parse(avmnist.Params, section, "datasets.av.preprocess")


@pytest.fixture
def build_root(tmp_path: Path) -> Path:
    return write_build_layout(tmp_path / "raw")


def preprocess(root: Path, out: Path, params: avmnist.Params, workers: int = 1) -> dict:
    return avmnist.preprocess("av", root, params, out / "av.h5", out / "av.report.json", workers)


# --------------------------------------------------------------------------------------------- build format


def test_build_writes_the_schema_with_speaker_disjoint_audio(build_root: Path, tmp_path: Path) -> None:
    report = preprocess(build_root, tmp_path, build_params())
    meta = read_meta(tmp_path / "av.h5")
    assert meta.source == "avmnist" and meta.modalities == ("audio", "image") and len(meta.class_names) == 10
    assert report["counts"] == {"train": 30, "val": 10, "test": 20}
    speakers_of = {}
    for split in ("train", "val", "test"):
        data = load_split(tmp_path / "av.h5", split)
        assert data.inputs["audio"].shape[1:] == (1, 16, 12) and data.inputs["image"].shape[1:] == (1, 28, 28)
        recordings = [i.split("+")[1] for i in data.ids]
        assert [int(r.split("_")[0]) for r in recordings] == data.labels.tolist()  # paired by label
        speakers_of[split] = {r.split("_")[1] for r in recordings}
    assert speakers_of == {"train": {"anna"}, "val": {"bert"}, "test": {"carl"}}
    assert report["speakers"] == {"train": ["anna"], "val": ["bert"], "test": ["carl"]}


def test_pca_is_fitted_on_training_images_only(build_root: Path, tmp_path: Path) -> None:
    report = preprocess(build_root, tmp_path, build_params())  # keep every component
    assert report["pca"]["fitted_on"] == "train" and report["pca"]["fit_samples"] == 30
    test_images = load_split(tmp_path / "av.h5", "test").inputs["image"]
    train_images = load_split(tmp_path / "av.h5", "train").inputs["image"]
    # The right half is blank in every training image: a train-only basis cannot represent the test
    # images' bright right half, so it comes back as the training mean, 0.
    assert np.abs(test_images[..., 14:]).max() < 1e-3
    assert np.abs(train_images[..., :14]).max() > 100  # what training saw survives


def test_build_keeps_the_asked_fraction_of_components(build_root: Path, tmp_path: Path) -> None:
    report = preprocess(build_root, tmp_path, build_params(pca={"keep": 0.02}))
    assert report["pca"]["components_kept"] == round(0.02 * 784)


def test_build_output_does_not_depend_on_workers(build_root: Path, tmp_path: Path) -> None:
    preprocess(build_root, tmp_path / "one", build_params(noise={"kind": "pink", "snr_db": 0.0}), workers=1)
    preprocess(build_root, tmp_path / "two", build_params(noise={"kind": "pink", "snr_db": 0.0}), workers=2)
    assert (tmp_path / "one/av.h5").read_bytes() == (tmp_path / "two/av.h5").read_bytes()


def test_noise_folder_is_used_and_changes_the_audio(build_root: Path, tmp_path: Path) -> None:
    noise_dir = tmp_path / "noise"
    noise_dir.mkdir()
    soundfile.write(noise_dir / "hum.wav", 0.3 * np.sin(np.arange(4000) * 0.3), 8000, subtype="PCM_16")
    quiet = build_params(noise={"snr_db": 40.0})
    loud = build_params(noise={"kind": "folder", "folder": str(noise_dir), "snr_db": -10.0})
    preprocess(build_root, tmp_path / "quiet", quiet)
    preprocess(build_root, tmp_path / "loud", loud)
    a = load_split(tmp_path / "quiet/av.h5", "train").inputs["audio"]
    b = load_split(tmp_path / "loud/av.h5", "train").inputs["audio"]
    assert np.abs(a - b).mean() > 1.0


def test_unreadable_recordings_are_skipped_and_reported(build_root: Path, tmp_path: Path) -> None:
    bad = build_root / "fsdd/recordings/3_anna_0.wav"
    bad.write_bytes(b"RIFF not audio")
    (build_root / "fsdd/recordings/readme_notes.wav").write_bytes(b"")
    report = preprocess(build_root, tmp_path, build_params())
    reasons = {s["file"]: s["reason"] for s in report["skipped"]}
    assert str(bad) in reasons and "not a readable audio file" in reasons[str(bad)]
    assert any("name is not" in r for r in reasons.values())
    ids = load_split(tmp_path / "av.h5", "train").ids
    assert not any(i.endswith("+3_anna_0") for i in ids)


def test_too_many_bad_recordings_fail_without_a_dataset_file(build_root: Path, tmp_path: Path) -> None:
    for path in sorted((build_root / "fsdd/recordings").glob("*_anna_*.wav"))[:6]:
        path.write_bytes(b"")
    with pytest.raises(RawDataError, match=r"max_skipped_fraction = 0.05"):
        preprocess(build_root, tmp_path, build_params())
    assert not (tmp_path / "av.h5").exists() and not (tmp_path / "av.report.json").exists()
    assert json.loads((tmp_path / "av.report.failed.json").read_text())["skipped"]  # beside the last good pair


def test_unknown_speaker_and_missing_digits_are_named(build_root: Path, tmp_path: Path) -> None:
    with pytest.raises(RawDataError, match=r"split.test_speakers names \['zoe'\]"):
        preprocess(build_root, tmp_path, build_params(split={"val_speakers": ["bert"], "test_speakers": ["zoe"]}))
    for path in (build_root / "fsdd/recordings").glob("7_carl_*.wav"):
        path.unlink()
    with pytest.raises(RawDataError, match=r"test speakers \['carl'\] have no usable recording of digits \[7\]"):
        preprocess(build_root, tmp_path, build_params())


def test_truncated_idx_file_is_named(build_root: Path, tmp_path: Path) -> None:
    path = build_root / "mnist/t10k-images-idx3-ubyte.gz"
    with gzip.open(path, "rb") as fh:
        data = fh.read()
    with gzip.open(path, "wb") as fh:
        fh.write(data[:-100])
    with pytest.raises(RawDataError, match=r"t10k-images-idx3-ubyte.gz: header says .* truncated"):
        preprocess(build_root, tmp_path, build_params())


def test_missing_raw_folder_shows_both_layouts(tmp_path: Path) -> None:
    with pytest.raises(RawDataError) as err:
        avmnist.check_raw(tmp_path / "nowhere", build_params())
    assert "format npy" in str(err.value) and "train-images-idx3-ubyte.gz" in str(err.value)
    (tmp_path / "empty").mkdir()
    with pytest.raises(RawDataError, match="neither AV-MNIST layout is complete"):
        avmnist.check_raw(tmp_path / "empty", build_params())


def test_params_errors_name_the_key() -> None:
    with pytest.raises(ConfigError, match=r"datasets.av.preprocess.split.test_speakers: speakers \['bert'\]"):
        build_params(split={"val_speakers": ["bert"], "test_speakers": ["bert"]})
    with pytest.raises(ConfigError, match=r"datasets.av.preprocess.noise.folder"):
        build_params(noise={"kind": "folder"})
    with pytest.raises(ConfigError, match=r"datasets.av.preprocess.pca.by: 'bits' is not allowed"):
        build_params(pca={"by": "bits"})


# --------------------------------------------------------------------------------------------- npy format


def write_npy_layout(root: Path, n_train: int = 20, n_test: int = 8, side: int = 16) -> Path:
    rng = np.random.default_rng(0)
    for part, n in (("train", n_train), ("test", n_test)):
        for folder, shape, dtype in (("image", (n, 784), np.uint8), ("audio", (n, side, side), np.float32)):
            (root / folder).mkdir(parents=True, exist_ok=True)
            np.save(root / f"{folder}/{part}_data.npy", rng.integers(0, 255, size=shape).astype(dtype))
        np.save(root / f"{part}_labels.npy", np.arange(n) % 10)
    return root


def test_npy_format_is_detected_and_holds_out_validation(tmp_path: Path) -> None:
    root = write_npy_layout(tmp_path / "raw")
    report = preprocess(root, tmp_path, build_params())
    assert report["format"] == "npy" and report["counts"] == {"train": 15, "val": 5, "test": 8}
    train, val = load_split(tmp_path / "av.h5", "train"), load_split(tmp_path / "av.h5", "val")
    assert not set(train.ids) & set(val.ids)
    raw_images = np.load(root / "image/train_data.npy")
    row = int(train.ids[0].removeprefix("train"))
    assert np.array_equal(train.inputs["image"][0].reshape(-1), raw_images[row].astype(np.float32))
    assert train.inputs["audio"].shape[1:] == (1, 16, 16)
    with h5py.File(tmp_path / "av.h5") as h5:
        assert json.loads(h5.attrs["preprocessing"])["format"] == "npy"


def test_npy_shape_mismatch_names_the_file(tmp_path: Path) -> None:
    root = write_npy_layout(tmp_path / "raw")
    np.save(root / "test_labels.npy", np.arange(5) % 10)
    with pytest.raises(RawDataError, match=r"test_labels.npy: .* the three test files must have the same N"):
        preprocess(root, tmp_path, build_params())
    np.save(root / "image/train_data.npy", np.zeros((20, 28, 28), dtype=np.uint8))
    with pytest.raises(RawDataError, match=r"image/train_data.npy: expected \(N, 784\) pixels"):
        preprocess(root, tmp_path, build_params())


# --------------------------------------------------------------------------------------------- real data


@pytest.mark.skipif(not (SHARED_DATA / "mnist").is_dir(), reason="needs ../shared/data (MNIST, FSDD)")
def test_real_mnist_and_fsdd_preprocess_and_train_an_epoch(tmp_path: Path) -> None:
    """A small subset of the real MNIST and FSDD files through preprocessing and one training epoch."""
    from g2d.stages import train_teachers

    from conftest import toy_params

    section = {
        "limit": {"train": 64, "val": 32, "test": 32},
        "pca": {"keep": 0.25, "by": "energy"},
        "audio": {"n_mels": 32, "frames": 32},
        "noise": {"snr_db": 0.0},
        "split": {"train_speakers": ["jackson"], "val_speakers": ["george"], "test_speakers": ["yweweler"]},
    }
    pre = parse(avmnist.Params, section, "datasets.avmnist.preprocess")
    report = avmnist.preprocess("avmnist", SHARED_DATA, pre, tmp_path / "av.h5", tmp_path / "av.report.json")
    assert report["counts"] == {"train": 64, "val": 32, "test": 32} and report["skipped"] == []
    assert report["pca"]["components_kept"] < 20  # removing 75% of the energy leaves a handful
    assert report["speakers"]["test"] == ["yweweler"]
    params = toy_params(
        datasets={
            "avmnist": {
                "source": "avmnist",
                "raw_dir": str(SHARED_DATA),
                "encoders": {"audio": "small_cnn", "image": "small_cnn"},
                "preprocess": section,
            }
        },
        teacher={"epochs": 1},
    )
    train_teachers.run(params, "avmnist", 0, tmp_path / "av.h5", tmp_path / "teachers", tmp_path / "resume")
    for modality in ("audio", "image"):
        history = json.loads((tmp_path / f"teachers/{modality}.log.json").read_text())
        assert len(history) == 1 and 0.0 <= history[0]["val_acc"] <= 1.0 and np.isfinite(history[0]["loss"])
