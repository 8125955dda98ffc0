"""The cremad source end to end on a small raw folder with broken files in it."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from g2d.config.schema import ConfigError, parse
from g2d.datasets import RawDataError, get_source
from g2d.datasets.cremad import CLASS_NAMES, MODALITIES, Params, SplitParams, check_raw, parse_clip, preprocess
from g2d.io.dataset_file import SPLITS, load_split, read_meta

from conftest_data import tiny_cremad_params, write_tiny_raw

BAD_WAV = "1002_IEO_HAP_XX"
BAD_VIDEO = "1003_IEO_SAD_XX"
AUDIO_ONLY = "1004_IEO_NEU_LO"


@pytest.fixture(scope="module")
def raw(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """24 demo clips, one with a garbage wav, one with a garbage flv, plus a wav without video."""
    root = write_tiny_raw(tmp_path_factory.mktemp("cremad") / "raw")
    (root / "AudioWAV" / f"{BAD_WAV}.wav").write_bytes(b"RIFF" + bytes(range(256)) * 8)
    (root / "VideoFlash" / f"{BAD_VIDEO}.flv").write_bytes(b"FLV\x01\x05" + bytes(range(256)) * 8)
    shutil.copy(root / "AudioWAV" / "1004_IEO_NEU_XX.wav", root / "AudioWAV" / f"{AUDIO_ONLY}.wav")
    return root


@pytest.fixture(scope="module")
def processed(raw: Path) -> tuple[Path, dict]:
    out = raw.parent / "out"
    report = preprocess(
        "tiny", raw, tiny_cremad_params(max_skipped_fraction=0.5), out / "tiny.h5", out / "tiny_report.json", workers=1
    )
    return out / "tiny.h5", report


def test_source_is_registered() -> None:
    source = get_source("cremad")
    assert source.MODALITIES == MODALITIES == ("audio", "video")
    assert source.CLASS_NAMES == ("NEU", "HAP", "SAD", "FEA", "DIS", "ANG")


def test_dataset_file_follows_the_schema(processed: tuple[Path, dict]) -> None:
    path, _ = processed
    meta = read_meta(path)
    assert (meta.dataset, meta.source, meta.task) == ("tiny", "cremad", "classification")
    assert meta.modalities == MODALITIES and meta.class_names == CLASS_NAMES
    assert meta.preprocessing["source"] == "cremad"
    assert meta.preprocessing["audio"]["hop_length"] == 128 and "workers" not in meta.preprocessing
    seen: dict[str, str] = {}
    for split in SPLITS:
        data = load_split(path, split)
        n = len(data)
        assert n > 0
        assert data.inputs["audio"].shape == (n, 1, 129, 63) and data.inputs["audio"].dtype == np.float32
        assert data.inputs["video"].shape == (n, 2, 3, 16, 16) and data.inputs["video"].dtype == np.uint8
        assert data.ids == sorted(data.ids)
        assert [CLASS_NAMES[label] for label in data.labels] == [parse_clip(i).emotion for i in data.ids]
        seen.update({clip: split for clip in data.ids})
    assert len(seen) == 24 - 2 and BAD_WAV not in seen and BAD_VIDEO not in seen
    actors_per_split = {s: {parse_clip(c).actor for c, sp in seen.items() if sp == s} for s in SPLITS}
    assert sum(len(a) for a in actors_per_split.values()) == 4, "an actor appears in two splits"


def test_report_lists_every_skipped_clip_with_a_reason(processed: tuple[Path, dict]) -> None:
    path, report = processed
    assert json.loads((path.parent / "tiny_report.json").read_text()) == json.loads(json.dumps(report))
    skipped = {s["clip"]: s for s in report["skipped"]}
    assert set(skipped) == {BAD_WAV, BAD_VIDEO, AUDIO_ONLY}
    assert skipped[BAD_WAV]["file"].endswith(f"AudioWAV/{BAD_WAV}.wav") and skipped[BAD_WAV]["reason"]
    assert skipped[BAD_VIDEO]["file"].endswith(f"VideoFlash/{BAD_VIDEO}.flv") and skipped[BAD_VIDEO]["reason"]
    assert "no video" in skipped[AUDIO_ONLY]["reason"]
    assert report["clips_found"] == 25
    assert report["skipped_fraction"] == pytest.approx(3 / 25)
    assert sum(report["counts"].values()) == 22


def test_too_many_skipped_clips_fail_without_a_dataset_file(raw: Path, tmp_path: Path) -> None:
    out, report = tmp_path / "strict.h5", tmp_path / "strict_report.json"
    with pytest.raises(RawDataError) as error:
        preprocess("strict", raw, tiny_cremad_params(max_skipped_fraction=0.0), out, report, workers=1)
    message = str(error.value)
    failed = tmp_path / "strict_report.failed.json"
    assert f"{BAD_WAV}.wav" in message and f"{BAD_VIDEO}.flv" in message and str(failed) in message
    assert "max_skipped_fraction" in message
    assert not out.exists() and not report.exists() and not list(tmp_path.glob("*.tmp"))
    assert len(json.loads(failed.read_text())["skipped"]) == 3


def test_worker_count_does_not_change_the_output(raw: Path, processed: tuple[Path, dict], tmp_path: Path) -> None:
    path, _ = processed
    parallel = tmp_path / "parallel.h5"
    preprocess("tiny", raw, tiny_cremad_params(max_skipped_fraction=0.5), parallel, tmp_path / "r.json", workers=2)
    assert read_meta(parallel) == read_meta(path)
    for split in SPLITS:
        one, two = load_split(path, split), load_split(parallel, split)
        assert one.ids == two.ids
        np.testing.assert_array_equal(one.labels, two.labels)
        for modality in MODALITIES:
            np.testing.assert_array_equal(one.inputs[modality], two.inputs[modality])
    assert parallel.read_bytes() == path.read_bytes()


def test_split_lists_mode(raw: Path, tmp_path: Path) -> None:
    clips = sorted(p.stem for p in (raw / "VideoFlash").glob("*.flv"))
    train = [c for c in clips if not c.startswith("1001")]
    *test, unlisted = [c for c in clips if c.startswith("1001")]
    (tmp_path / "train.csv").write_text("".join(f"{c},{parse_clip(c).emotion}\n" for c in train))
    (tmp_path / "test.csv").write_text("name,label\n" + "".join(f"{c},{parse_clip(c).emotion}\n" for c in test))
    split = SplitParams(
        by="list", val_fraction=0.2, train_list=str(tmp_path / "train.csv"), test_list=str(tmp_path / "test.csv")
    )
    report = preprocess(
        "lists",
        raw,
        tiny_cremad_params(split=split, max_skipped_fraction=0.5),
        tmp_path / "lists.h5",
        tmp_path / "lists_report.json",
        workers=1,
    )
    assert load_split(tmp_path / "lists.h5", "test").ids == test
    val = load_split(tmp_path / "lists.h5", "val").ids
    train_ids = load_split(tmp_path / "lists.h5", "train").ids
    assert not set(val) & set(train_ids) and set(val) | set(train_ids) == set(train) - {BAD_WAV, BAD_VIDEO}
    assert report["not_in_lists"] == [unlisted]


def test_split_list_labels_must_match_clip_names(raw: Path, tmp_path: Path) -> None:
    (tmp_path / "train.csv").write_text("1001_IEO_ANG_XX,SAD\n")
    (tmp_path / "test.csv").write_text("1002_IEO_ANG_XX,ANG\n")
    split = SplitParams(by="list", train_list=str(tmp_path / "train.csv"), test_list=str(tmp_path / "test.csv"))
    with pytest.raises(RawDataError, match="1001_IEO_ANG_XX labelled SAD"):
        preprocess("lists", raw, tiny_cremad_params(split=split), tmp_path / "x.h5", tmp_path / "x.json")
    assert not (tmp_path / "x.h5").exists()


def test_missing_raw_folder_shows_the_expected_layout(tmp_path: Path) -> None:
    with pytest.raises(RawDataError) as error:
        preprocess("tiny", tmp_path / "nowhere", Params(), tmp_path / "x.h5", tmp_path / "x.json")
    message = str(error.value)
    assert "nowhere" in message and "AudioWAV/" in message and "VideoFlash/" in message
    assert "1001_DFA_ANG_XX.wav" in message


def test_empty_subfolders_are_reported(tmp_path: Path) -> None:
    (tmp_path / "AudioWAV").mkdir()
    (tmp_path / "VideoFlash").mkdir()
    with pytest.raises(RawDataError, match="AudioWAV: missing or holds no .wav"):
        check_raw(tmp_path)
    (tmp_path / "AudioWAV" / "1001_DFA_ANG_XX.wav").write_text("version https://git-lfs.github.com/spec/v1\n")
    with pytest.raises(RawDataError, match="VideoFlash: missing"):
        check_raw(tmp_path)
    (tmp_path / "VideoFlash" / "1001_DFA_ANG_XX.flv").write_text("version https://git-lfs.github.com/spec/v1\n")
    with pytest.raises(RawDataError, match="git lfs pull"):
        check_raw(tmp_path)


def test_clip_names_parse() -> None:
    clip = parse_clip("1091_WSI_FEA_HI")
    assert (clip.actor, clip.sentence, clip.emotion, clip.level, clip.label) == ("1091", "WSI", "FEA", "HI", 3)
    for bad in ("1001_DFA_XYZ_XX", "1001-DFA-ANG-XX", "notes"):
        with pytest.raises(ValueError, match=bad):
            parse_clip(bad)


@pytest.mark.parametrize(
    ("section", "key"),
    [
        ({"split": {"val_fraction": 1.0}}, "datasets.demo.preprocess.split.val_fraction"),
        ({"split": {"val_fraction": 0.5, "test_fraction": 0.5}}, "datasets.demo.preprocess.split.test_fraction"),
        ({"split": {"by": "list"}}, "datasets.demo.preprocess.split.train_list"),
        ({"split": {"by": "speaker"}}, "datasets.demo.preprocess.split.by"),
        ({"audio": {"hop_length": 0}}, "datasets.demo.preprocess.audio.hop_length"),
        ({"audio": {"duration": 0.01}}, "datasets.demo.preprocess.audio.n_fft"),
        ({"video": {"size": 0}}, "datasets.demo.preprocess.video.size"),
        ({"max_skipped_fraction": 2}, "datasets.demo.preprocess.max_skipped_fraction"),
        ({"workers": 0}, "datasets.demo.preprocess.workers"),
    ],
)
def test_params_errors_name_the_key(section: dict, key: str) -> None:
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        parse(Params, section, "datasets.demo.preprocess")


def test_params_defaults_are_the_reference() -> None:
    params = parse(Params, {}, "datasets.demo.preprocess")
    assert params == Params()
    assert dataclasses.asdict(params.audio) == {"sample_rate": 22050, "duration": 3.0, "n_fft": 512, "hop_length": 353}
    assert (params.video.fps, params.video.frames, params.video.size) == (1.0, 1, 224)
