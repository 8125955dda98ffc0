"""The vggsound source on generated mp4 clips with sound (several audio codecs, broken files of each kind),
both CSV variants and both file-name patterns, resume, compression, and a tiny run of the whole pipeline."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import h5py
import numpy as np
import pytest
import yaml

from g2d.cli import main
from g2d.config.schema import ConfigError, parse
from g2d.datasets import RawDataError, get_source, vggsound
from g2d.datasets.resume import resume_folder
from g2d.datasets.splits import hold_out_stratified
from g2d.datasets.vggsound_synth import ClipSpec, write_clip, write_raw
from g2d.errors import RunError
from g2d.io.dataset_file import SPLITS, check_preprocessing, load_split, read_meta
from g2d.transforms.av_clip import decode_clip

ROOT = Path(__file__).resolve().parents[1]
LABELS = ("cat purring", "dog barking", "engine accelerating, revving, vroom")  # a comma: the CSV quotes it
CODECS = ("aac", "libmp3lame", "libopus", "ac3")
FAULTS = ("missing", "empty", "truncated", "cut", "no_audio", "silent")
GOOD = 12  # 3 labels x (3 train + 1 test)
FOUND = GOOD + len(FAULTS) - 1  # clips with a file: all but the missing one
TINY = {
    "audio": {"duration": 1.0, "window": 0.5, "window_start": 0.25},
    "video": {"fps": 2.0, "frames": 2, "size": 16},
    "split": {"val_fraction": 0.34, "seed": 0},
    "max_skipped_fraction": 0.5,
    "shard_size": 4,
}


def specs() -> list[ClipSpec]:
    """Per label 3 training and 1 test clip in rotating audio codecs (one H.264 video is MPEG-4 instead), and
    one row per kind of fault."""
    good = [
        ClipSpec(
            f"yt{k}{j}-_x",
            30 * j,
            label,
            "train" if j < 3 else "test",
            audio_codec=CODECS[(k + j) % len(CODECS)],
            video_codec="mpeg4" if (k, j) == (0, 1) else "libx264",
        )
        for k, label in enumerate(LABELS)
        for j in range(4)
    ]
    return good + [ClipSpec(f"bad-{fault}", 5, LABELS[1], "train", fault=fault) for fault in FAULTS]  # type: ignore[arg-type]


def tiny_params(**changes: object) -> vggsound.Params:
    return parse(vggsound.Params, {**TINY, **changes}, "preprocess")


def run(raw: Path, out: Path, params: vggsound.Params, workers: int = 1) -> dict:
    return vggsound.preprocess("vgg", raw, params, out / "vgg.h5", out / "vgg.report.json", workers)


@pytest.fixture(scope="module")
def raw(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_raw(tmp_path_factory.mktemp("vggsound") / "raw", specs())


@pytest.fixture(scope="module")
def processed(raw: Path) -> tuple[Path, dict]:
    out = raw.parent / "out"
    return out / "vgg.h5", run(raw, out, tiny_params())


def test_source_is_registered() -> None:
    assert get_source("vggsound") is vggsound
    assert vggsound.MODALITIES == ("audio", "video") and vggsound.IMAGE_MODALITIES == ("video",)


def test_dataset_file_follows_the_csv(processed: tuple[Path, dict]) -> None:
    path, report = processed
    meta = read_meta(path)
    assert (meta.source, meta.class_names) == ("vggsound", LABELS)
    assert "workers" not in meta.preprocessing and "resume" not in meta.preprocessing
    rows = {f"{s.youtube_id}_{s.start:06d}": s for s in specs()}
    seen = {}
    for split in SPLITS:
        data = load_split(path, split)
        assert data.inputs["audio"].shape[1:] == (1, 129, 63) and data.inputs["audio"].dtype == np.float32
        assert data.inputs["video"].shape[1:] == (2, 3, 16, 16) and data.inputs["video"].dtype == np.uint8
        assert [LABELS[y] for y in data.labels] == [rows[i].label for i in data.ids]
        seen.update({i: split for i in data.ids})
    assert {i for i, s in seen.items() if s == "test"} == {i for i, r in rows.items() if r.split == "test"}
    assert {rows[i].split for i, s in seen.items() if s == "val"} == {"train"}
    assert {rows[i].label for i, s in seen.items() if s == "val"} == set(LABELS), "every label is in validation"
    assert report["counts"]["test"] == 3 and sum(report["counts"].values()) == len(seen) == GOOD
    assert not resume_folder(path).exists(), "the shards of a finished run are removed"


def test_resume_settings_are_not_preprocessing_settings(processed: tuple[Path, dict]) -> None:
    """Stages check the file against params: how a run resumes (like workers) never makes it stale; a
    setting that changes the rows does."""
    path, _ = processed
    check_preprocessing(path, "vgg", "vggsound", tiny_params(resume=False, shard_size=7, workers=3))
    with pytest.raises(RunError, match=r"preprocess.compression: file has 0, params say 1"):
        check_preprocessing(path, "vgg", "vggsound", tiny_params(compression=1))


def test_missing_files_are_counted_and_broken_ones_skipped_with_the_reason(processed: tuple[Path, dict]) -> None:
    path, report = processed
    assert json.loads(path.with_name("vgg.report.json").read_text()) == json.loads(json.dumps(report))
    assert (report["csv_rows"], report["clips_found"], report["missing_files"]) == (FOUND + 1, FOUND, 1)
    assert report["missing_by_split"] == {"train": 1}
    assert report["missing_examples"][0].endswith("video/bad-missing_000005.mp4")
    reasons = {s["clip"]: s["reason"] for s in report["skipped"]}
    assert set(reasons) == {f"bad-{f}_000005" for f in FAULTS if f != "missing"}
    assert "empty (0 bytes)" in reasons["bad-empty_000005"]
    assert "truncated" in reasons["bad-truncated_000005"] and "truncated" in reasons["bad-cut_000005"]
    assert "no audio track" in reasons["bad-no_audio_000005"]
    assert reasons["bad-silent_000005"].startswith("silent")
    assert all(s["file"].endswith(f"video/{s['clip']}.mp4") for s in report["skipped"])


def test_both_file_name_patterns_and_csv_variants_give_the_same_rows(
    raw: Path, processed: tuple[Path, dict], tmp_path: Path
) -> None:
    """The other naming ({youtube_id}_{start_ms}_{end_ms}.mp4) and the CSV with a header read the same clips."""
    other = tmp_path / "raw"
    (other / "video").mkdir(parents=True)
    for spec in specs():
        if spec.fault != "missing":
            name = f"{spec.youtube_id}_{spec.start * 1000}_{(spec.start + 10) * 1000}.mp4"
            os.link(raw / "video" / f"{spec.youtube_id}_{spec.start:06d}.mp4", other / "video" / name)
    csv_text = (raw / "vggsound.csv").read_text()
    (other / "vggsound.csv").write_text("youtube_id,time,label,split\n" + csv_text)
    run(other, tmp_path / "out", tiny_params(naming="{youtube_id}_{start_ms}_{end_ms}.mp4"))
    for split in SPLITS:
        a, b = load_split(processed[0], split), load_split(tmp_path / "out" / "vgg.h5", split)
        assert a.ids == b.ids and np.array_equal(a.labels, b.labels)
        for m in a.inputs:
            assert np.array_equal(a.inputs[m], b.inputs[m])


def test_output_bytes_do_not_depend_on_workers(raw: Path, processed: tuple[Path, dict], tmp_path: Path) -> None:
    run(raw, tmp_path, tiny_params(), workers=2)
    assert (tmp_path / "vgg.h5").read_bytes() == processed[0].read_bytes()


class Interrupt(KeyboardInterrupt):
    """What a Ctrl-C or a killed job looks like to the stage."""


def counting(monkeypatch: pytest.MonkeyPatch, stop_after: int | None = None) -> list[str]:
    """Count the clips decoded (in this process: run with one worker); optionally interrupt after some."""
    decoded: list[str] = []
    decode = vggsound.process_clip

    def wrapped(job: vggsound.Job, **kw: object) -> object:
        if stop_after is not None and len(decoded) == stop_after:
            raise Interrupt
        decoded.append(job.id)
        return decode(job, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(vggsound, "process_clip", wrapped)
    return decoded


def test_an_interrupted_run_resumes_from_its_finished_shards(
    raw: Path, processed: tuple[Path, dict], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out, params = tmp_path / "out", tiny_params()
    shards = resume_folder(out / "vgg.h5")
    with pytest.raises(Interrupt):
        with monkeypatch.context() as m:
            counting(m, stop_after=10)  # shards of 4 clips: two finished, the third lost
            run(raw, out, params)
    assert not (out / "vgg.h5").exists() and sorted(p.name for p in shards.iterdir()) == [
        "shard-000000.h5",
        "shard-000001.h5",
    ]
    with monkeypatch.context() as m:
        decoded = counting(m)
        run(raw, out, params)
    assert len(decoded) == FOUND - 8, "only the clips of unfinished shards are decoded again"
    assert (out / "vgg.h5").read_bytes() == processed[0].read_bytes()
    assert not shards.exists()


def test_a_resumed_shard_is_checked_not_trusted(
    raw: Path, processed: tuple[Path, dict], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A shard whose rows were altered, or written under other decoding params, is decoded again."""
    out = tmp_path / "out"
    shards = resume_folder(out / "vgg.h5")

    def interrupt() -> None:
        with pytest.raises(Interrupt), monkeypatch.context() as m:
            counting(m, stop_after=10)
            run(raw, out, tiny_params())

    interrupt()
    for shard in sorted(shards.iterdir()):  # alter a decoded row of the first shard that has one
        with h5py.File(shard, "r+") as h5:
            if "video" in h5:
                row = next(i for i in range(4) if h5["video"][i].any())
                h5["video"][row] = 255 - h5["video"][row]
                break
    with monkeypatch.context() as m:
        decoded = counting(m)
        run(raw, out, tiny_params())
    assert len(decoded) == FOUND - 4, "the altered shard failed its checksums and was decoded again; the other resumed"
    assert (out / "vgg.h5").read_bytes() == processed[0].read_bytes()
    interrupt()
    with monkeypatch.context() as m:
        decoded = counting(m)
        run(raw, out, tiny_params(audio={**TINY["audio"], "min_peak": 0.001}))
    assert len(decoded) == FOUND, "shards of other decoding params are never resumed"


def test_frames_can_be_stored_compressed(raw: Path, processed: tuple[Path, dict], tmp_path: Path) -> None:
    run(raw, tmp_path, tiny_params(compression=6))
    with h5py.File(tmp_path / "vgg.h5") as h5, h5py.File(processed[0]) as plain:
        assert h5["train/video"].compression == "gzip" and h5["train/audio"].compression is None
        assert np.array_equal(h5["train/video"][()], plain["train/video"][()])
        assert h5["train/video"].id.get_storage_size() < plain["train/video"].id.get_storage_size()


def test_reference_settings_give_129_x_626_and_three_frames(tmp_path: Path) -> None:
    """A 10 s clip at the defaults: 16 kHz, middle 5 s, n_fft 256, hop 128; 3 of its 10 frames at 1 fps, 224 px."""
    path = write_clip(tmp_path / "ten.mp4", ClipSpec("ten", 0, "dog barking", "train", seconds=10.0, fps=4, width=32))
    assert len(decode_clip(path, 16000, 1.0, 8).frames) == 10
    params = vggsound.Params()
    job = vggsound.Job("ten_000000", "train", 0, path, path.stat().st_size, 0)
    sample = vggsound.process_clip(job, params.audio, params.video)
    assert isinstance(sample, vggsound.Sample)
    assert sample.arrays["audio"].shape == (1, 129, 626) and sample.arrays["video"].shape == (3, 3, 224, 224)
    assert vggsound.sample_shapes(params) == {"audio": ((1, 129, 626), "float32"), "video": ((3, 3, 224, 224), "uint8")}


def test_the_paper_preset_spells_out_the_defaults() -> None:
    preset = yaml.safe_load((ROOT / "config/presets/vggsound.yaml").read_text())
    section = preset["datasets"]["vggsound"]["preprocess"]
    assert parse(vggsound.Params, section, "p") == dataclasses.replace(vggsound.Params(), num_classes=309, workers=16)


def test_hold_out_is_stratified_seeded_and_order_free() -> None:
    ids = [f"c{i}" for i in range(31)]
    labels = ["a"] * 10 + ["b"] * 20 + ["c"]
    held = hold_out_stratified(ids, labels, 0.1, seed=3)
    assert sum(i in held for i in ids[:10]) == 1 and sum(i in held for i in ids[10:30]) == 2 and "c30" not in held
    assert hold_out_stratified(ids[::-1], labels[::-1], 0.1, seed=3) == held
    assert hold_out_stratified(ids, labels, 0.1, seed=4) != held


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a,1,dog,train\nb,2,dog,valid\n", r"vggsound.csv, line 2, column 4 \(split\): 'valid' is not one of"),
        ("a,x,dog,train\n", r"line 1, column 2 \(start_seconds\): 'x' is not a number"),
        ("a,1.5,dog,train\n", r"line 1, column 2 \(start_seconds\): '1.5' is not a whole"),
        ("a,1,dog,bark,train\n", r"line 1: expected 4 columns .* got 5 \(quote a label"),
        ("a,1,dog,train\n\na,1,cat,test\n", r"line 3: clip a at 1 s is listed again \(first on line 1\)"),
        ("youtube_id,start_seconds,label,split\n", r"holds no rows"),
    ],
)
def test_csv_errors_name_the_line_and_column(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "vggsound.csv").write_text(text)
    with pytest.raises(RawDataError, match=message):
        vggsound.read_csv(tmp_path / "vggsound.csv")


def test_raw_data_errors_say_what_to_do(raw: Path, tmp_path: Path) -> None:
    with pytest.raises(RawDataError, match=f"none of the {FOUND + 1} clips .* naming " + r"'\{youtube_id\}.mp4'"):
        run(raw, tmp_path, tiny_params(naming="{youtube_id}.mp4"))
    with pytest.raises(RawDataError, match=r"has 3 labels, preprocess.num_classes expects 309"):
        run(raw, tmp_path, tiny_params(num_classes=309))
    with pytest.raises(RawDataError, match=r"(?s)nope.csv: CSV not found .*expected VGGSound layout"):
        run(raw, tmp_path, tiny_params(csv="nope.csv"))


@pytest.mark.parametrize(
    ("changes", "key"),
    [
        ({"naming": "{id}.mp4"}, "p.naming"),
        ({"naming": "{youtube_id}_{stop}.mp4"}, "p.naming"),
        ({"naming": "clips/{youtube_id}.mp4"}, "p.naming"),
        ({"audio": {"window": 8.0}}, "p.audio.window_start"),
        ({"compression": 10}, "p.compression"),
        ({"split": {"val_fraction": 0.0}}, "p.split.val_fraction"),
    ],
)
def test_params_errors_name_the_key(changes: dict, key: str) -> None:
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        parse(vggsound.Params, changes, "p")


def test_raw_mp4_clips_go_through_the_whole_pipeline_with_a_preset(
    raw: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Done when: real-format clips plus the CSV -> preprocessing, teachers, students, report; params only."""
    project = tmp_path / "project"
    target = project / "data/raw/vggsound-tiny"
    (target / "video").mkdir(parents=True)
    os.link(raw / "vggsound.csv", target / "vggsound.csv")
    for clip in (raw / "video").iterdir():
        os.link(clip, target / "video" / clip.name)
    monkeypatch.chdir(project)
    params = ["--params", str(ROOT / "params.yaml"), "--params", str(ROOT / "config/presets/vggsound-tiny.yaml")]
    run_ = ["--dataset", "vggsound", "--seed", "0"]
    wrong = tmp_path / "wrong-naming.yaml"
    wrong.write_text(yaml.safe_dump({"datasets": {"vggsound": {"preprocess": {"naming": "{youtube_id}.mp4"}}}}))
    assert main(["preprocess", *params, "--params", str(wrong), "--dataset", "vggsound"]) == 2
    assert "g2d preprocess: error:" in capsys.readouterr().err and not (project / "data/processed").exists()
    assert main(["preprocess", *params, "--dataset", "vggsound"]) == 0
    assert main(["train-teachers", *params, *run_, "--threads", "1"]) == 0
    assert main(["score", *params, *run_, "--threads", "1"]) == 0
    for method in ("joint", "g2d"):
        assert main(["train-student", *params, *run_, "--method", method, "--threads", "1"]) == 0
        assert main(["evaluate", *params, *run_, "--method", method, "--threads", "1"]) == 0
    assert main(["report", *params]) == 0
    assert "## vggsound" in (project / "reports/report.md").read_text()
    summary = json.loads((project / "reports/summary.json").read_text())["vggsound"]
    assert set(summary["methods"]) == {"joint", "g2d"} and summary["modalities"] == ["audio", "video"]
