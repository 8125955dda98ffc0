"""Trust boundaries and failure modes: what a bad file, a bad number or a kill can do.

One test per case: a crafted checkpoint is refused without running its code; NaN input is skipped and
a non-finite loss stops training with the epoch, batch and term; JSON never holds NaN; negative seeds,
infinite numbers and `..` variant names are refused; a truncated merged config is detected; a foreign
folder survives generate-demo; a killed run's temporary files are removed; environment errors (full or
read-only disk, unknown dataset, unreadable checkpoint) end as `g2d <command>: error:` with exit 2;
created folders follow the umask; checkpoints are byte-reproducible; resume state of other code is
not resumed. (Failed preprocessing keeping the previous dataset file: tests/test_sources.py.)
"""

from __future__ import annotations

import errno
import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

from g2d.cli import main
from g2d.config.params import params_from_dict
from g2d.config.schema import ConfigError
from g2d.errors import RunError
from g2d.io.atomic import atomic_path, remove_stale_temps, temp_prefix, write_json
from g2d.io.atomic_dir import atomic_dir
from g2d.rules import check_config_file, write_config
from g2d.stages.report import _fmt, mean_std
from g2d.training import checkpoint, engine
from g2d.types import Batch

from conftest import ROOT, toy_params

BASE = json.loads(json.dumps(__import__("yaml").safe_load((ROOT / "params.yaml").read_text())))


def _params(**changes: Any):
    return params_from_dict({**BASE, **changes})


# ---- 1. a checkpoint cannot run code ----


class _Payload:
    """What a hostile student.pt carries: unpickling it would create `marker`."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_a_crafted_checkpoint_is_refused_and_its_code_never_runs(tmp_path):
    marker, crafted = tmp_path / "pwned", tmp_path / "student.pt"
    torch.save({"state_dict": {}, "payload": _Payload(marker)}, crafted)
    with pytest.raises(RunError, match=r"student.pt: refused to load: it holds pickled Python objects"):
        checkpoint.load(crafted)
    assert not marker.exists()


def test_resume_state_with_rng_and_history_loads_weights_only(tmp_path):
    """What fit saves (numpy's RNG state included) passes the weights-only loader, and restores exactly."""
    engine.seed_everything(3)
    checkpoint.save(tmp_path / "last.pt", {"rng": engine._rng_state(), "history": [{"epoch": 1, "loss": 0.5}]})
    expected = (__import__("random").random(), __import__("numpy").random.rand(), torch.rand(1).item())
    state = checkpoint.load(tmp_path / "last.pt")
    engine._set_rng_state(state["rng"])
    assert (__import__("random").random(), __import__("numpy").random.rand(), torch.rand(1).item()) == expected


def test_an_unreadable_checkpoint_names_the_file(tmp_path):
    (tmp_path / "audio.pt").write_bytes(b"PK\x03\x04 half a zip")
    with pytest.raises(RunError, match=r"audio.pt: not a readable g2d checkpoint .*delete it and rerun its stage"):
        checkpoint.load(tmp_path / "audio.pt")


# ---- 11. byte-reproducible checkpoints ----


def test_two_saves_of_the_same_weights_give_identical_bytes(tmp_path):
    torch.manual_seed(0)
    weights = torch.nn.Linear(4, 3).state_dict()
    checkpoint.save(tmp_path / "a.pt", {"state_dict": weights, "seed": 0})
    checkpoint.save(tmp_path / "sub" / "b.pt", {"state_dict": weights, "seed": 0})
    assert (tmp_path / "a.pt").read_bytes() == (tmp_path / "sub" / "b.pt").read_bytes()


# ---- 2. non-finite numbers ----


class _Rows:
    """The least a training split offers fit: its length and seeded batches."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __len__(self) -> int:
        return self.n

    def batches(self, batch_size: int, shuffle_seed: int | None = None):
        for start in range(0, self.n, batch_size):
            index = torch.arange(start, min(start + batch_size, self.n))
            yield Batch(inputs={"x": index.float()[:, None]}, target=index % 2, index=index)


def _fit(tmp_path: Path, step, epochs: int = 3, fingerprint: str = "fp"):
    model = torch.nn.Linear(1, 2)
    return engine.fit(
        model=model,
        optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
        scheduler=None,
        train=_Rows(8),  # type: ignore[arg-type]
        step=step,
        evaluate=lambda: {"val_acc": 0.5},
        epochs=epochs,
        batch_size=4,
        seed=0,
        select_key="val_acc",
        select_mode="max",
        resume_dir=tmp_path / "resume",
        fingerprint=fingerprint,
        desc="student g2d",
    )


def test_a_non_finite_loss_stops_training_naming_epoch_batch_and_term(tmp_path):
    def step(batch: Batch, epoch: int) -> dict[str, float]:
        blown = epoch == 2 and int(batch.index[0]) == 4
        return {"loss": math.nan if blown else 1.0, "loss_kd": math.inf if blown else 0.5, "train_acc": 0.5}

    with pytest.raises(RunError) as error:
        _fit(tmp_path, step)
    message = str(error.value)
    assert "student g2d: the loss became non-finite at epoch 2, batch 2 (loss = nan, loss_kd = inf)" in message
    assert "Lower lr" in message and "the state after epoch 1 is kept" in message
    assert checkpoint.load(tmp_path / "resume" / "last.pt")["epoch"] == 1  # nothing of the bad epoch saved


def test_json_never_holds_nan_and_the_report_says_undefined(tmp_path):
    write_json(tmp_path / "m.json", {"r2": math.nan, "mse": [1.0, math.inf], "n": 3})
    text = (tmp_path / "m.json").read_text()
    strict = json.loads(text, parse_constant=lambda c: pytest.fail(f"non-JSON constant {c} written"))
    assert strict == {"mse": [1.0, None], "n": 3, "r2": None}
    assert _fmt(mean_std([None, 0.5, 0.7]), 100.0) == "60.00 ± 14.14 (1 undefined)"
    assert _fmt(mean_std([None, None]), 100.0) == "n/a"


@pytest.mark.parametrize("value", [".inf", "-.inf", ".nan", "'inf'", "'nan'"])
def test_non_finite_params_are_refused(tmp_path, value):
    text = (ROOT / "params.yaml").read_text().replace("\nlr: 0.01", f"\nlr: {value}", 1)
    assert f"\nlr: {value}" in text
    (tmp_path / "params.yaml").write_text(text)
    with pytest.raises(ConfigError, match=r"^lr: .* is not a finite number"):
        params_from_dict(__import__("yaml").safe_load(text))


# ---- 3. seeds; 5. variant names; 8. targets that params do not define ----


def test_negative_seeds_are_refused():
    with pytest.raises(ConfigError, match=r"seeds\[1\]: -1 is negative; seeds are non-negative integers"):
        _params(seeds=[0, -1])


@pytest.mark.parametrize("name", [".", "..", ".hidden", "a/b", "trailing."])
def test_variant_names_are_plain_folder_names(name):
    ablation = {"over": "fusion", "values": ["late", "concat"], "names": [name, "ok"], "methods": ["joint"]}
    with pytest.raises(ConfigError, match=r"ablations.abl.names\[0\]: variant name .* is not a plain folder name"):
        _params(ablations={"abl": ablation})
    ok = {**ablation, "names": ["late.v2", "ok"]}
    assert list(_params(ablations={"abl": ok}).ablations["abl"].overrides()) == ["late.v2", "ok"]


@pytest.mark.parametrize(
    "argv, message",
    [
        (
            ["train-student", "--dataset", "nope", "--seed", "0", "--method", "g2d"],
            "--dataset: 'nope' is not a dataset",
        ),
        (["train-student", "--dataset", "demo", "--seed", "0", "--method", "nope"], "--method: unknown method 'nope'"),
        (["train-teachers", "--dataset", "demo", "--seed", "-1"], "--seed: -1 is negative"),
    ],
)
def test_unknown_targets_are_named_before_any_file_is_opened(tmp_path, monkeypatch, capsys, argv, message):
    monkeypatch.chdir(tmp_path)
    assert main([*argv, "--params", str(ROOT / "params.yaml")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"g2d {argv[0]}: error: {message}") and "Traceback" not in err
    assert "demo" in err or "nope" not in argv[2]  # the datasets params define are listed


# ---- 4. the merged config Snakemake hands every job ----


def test_a_truncated_merged_config_is_detected_and_rewritten(tmp_path, capsys):
    config = {**BASE, "seeds": [0], "teacher": {"epochs": 2}}
    path = write_config(config, tmp_path)
    check_config_file(path)  # intact
    path.write_text(path.read_text()[:40])
    with pytest.raises(ConfigError, match=r"does not match the hash in its name .*rerun snakemake"):
        check_config_file(path)
    assert main(["check", "--params", str(path)]) == 2
    assert "does not match the hash in its name" in capsys.readouterr().err
    assert write_config(config, tmp_path) == path  # the next snakemake run writes it whole again
    check_config_file(path)


# ---- 7. temporary files of killed runs ----


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_killed_runs_temporary_files_are_removed_and_a_live_runs_kept(tmp_path):
    target = tmp_path / "data.h5"
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        host = temp_prefix(target).split(".")[-2].rsplit("-", 1)[0]
        dead_file = tmp_path / f".data.h5.{host}-{_dead_pid()}.x1y2.tmp"
        dead_dir = tmp_path / f".data.h5.{host}-{_dead_pid()}.z3.tmp"
        live_file = tmp_path / f".data.h5.{host}-{live.pid}.q9.tmp"
        other_host = tmp_path / f".data.h5.elsewhere-{_dead_pid()}.q8.tmp"
        other_output = tmp_path / f".other.h5.{host}-{_dead_pid()}.q7.tmp"
        dead_file.write_bytes(b"x" * 1000)
        dead_dir.mkdir()
        (dead_dir / "part").write_text("x")
        for kept in (live_file, other_host, other_output):
            kept.write_text("x")
        with atomic_path(target) as tmp:
            assert tmp.name.startswith(temp_prefix(target))
            tmp.write_text("new")
        assert not dead_file.exists() and not dead_dir.exists()
        assert live_file.exists() and other_host.exists() and other_output.exists()
        assert remove_stale_temps(target) == []
    finally:
        live.kill()
        live.wait()
    assert remove_stale_temps(target) == [live_file]  # its owner is gone now


def test_git_ignores_temporary_files():
    for name in ("data/processed/.demo.h5.host-12.ab.tmp", "reports/.figures.host-3.cd.tmp"):
        result = subprocess.run(["git", "check-ignore", "-q", name], cwd=ROOT)
        assert result.returncode == 0, f"{name} is not ignored by .gitignore"


# ---- 8. errors from the environment ----


@pytest.mark.parametrize(
    "code, words",
    [
        (errno.ENOSPC, "no space left on the device"),
        (errno.EROFS, "the file system is read-only"),
        (errno.EACCES, "permission denied"),
    ],
)
def test_full_or_read_only_disk_ends_with_exit_2_and_the_file(tmp_path, monkeypatch, capsys, code, words):
    from g2d.datasets import demo

    out, written = tmp_path / "raw", []
    real = demo.write_wav

    def failing(path, *args):
        if len(written) == 2:  # the disk fills up (or turns read-only) on the third clip
            raise OSError(code, os.strerror(code), str(path))
        written.append(path)
        real(path, *args)

    monkeypatch.setattr(demo, "write_wav", failing)
    assert main(["generate-demo", "--params", str(ROOT / "params.yaml"), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("g2d generate-demo: error: ") and words in err and "Traceback" not in err
    assert ".wav: " in err  # the file it was writing
    assert list(tmp_path.iterdir()) == []  # no half-written demo, no temporary folder


def test_a_full_disk_while_saving_a_checkpoint_names_the_file(tmp_path, monkeypatch):
    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(checkpoint.os, "fsync", full)
    with pytest.raises(OSError) as error:
        checkpoint.save(tmp_path / "student.pt", {"state_dict": {"w": torch.zeros(2)}})
    assert error.value.errno == errno.ENOSPC
    assert not (tmp_path / "student.pt").exists() and list(tmp_path.iterdir()) == []


def test_debug_shows_the_traceback(tmp_path):
    with pytest.raises(ConfigError):
        main(["--debug", "train-teachers", "--dataset", "nope", "--seed", "0", "--params", str(ROOT / "params.yaml")])


def test_an_empty_split_is_named(tmp_path, toy_h5):
    import shutil

    import h5py

    from g2d.training.data import open_splits

    path = tmp_path / "e.h5"
    shutil.copy(toy_h5, path)
    with h5py.File(path, "a") as f:  # a file no successful preprocessing writes
        for dataset in f["val"].values():
            dataset.resize(0, axis=0)
    for loading in ("memory", "stream"):
        data = toy_params().data.__class__(loading=loading)
        with pytest.raises(RunError, match=r"e.h5: split 'val' has no rows; .*g2d preprocess"):
            open_splits(data, path, ("train", "val"))


# ---- 10. folders follow the umask ----


@pytest.mark.parametrize("mask, mode", [(0o022, 0o755), (0o002, 0o775)])
def test_created_folders_follow_the_umask(tmp_path, mask, mode):
    old = os.umask(mask)
    try:
        with atomic_dir(tmp_path / "teachers") as tmp:
            (tmp / "audio.pt").write_text("x")
        with atomic_path(tmp_path / "f.json") as tmp:
            tmp.write_text("{}")
    finally:
        os.umask(old)
    assert (tmp_path / "teachers").stat().st_mode & 0o777 == mode
    assert (tmp_path / "f.json").stat().st_mode & 0o777 == mode & 0o666


# ---- 12. resume across code versions ----


def test_resume_state_of_other_code_is_not_resumed(tmp_path, monkeypatch, capsys):
    def step(batch: Batch, epoch: int) -> dict[str, float]:
        if epoch == 2:
            raise KeyboardInterrupt
        return {"loss": 1.0}

    with pytest.raises(KeyboardInterrupt):
        _fit(tmp_path, step)
    assert checkpoint.load(tmp_path / "resume" / "last.pt")["code"] == checkpoint.code_version()
    monkeypatch.setattr(checkpoint, "code_version", lambda: "0.1.0+updated")
    result = _fit(tmp_path, lambda batch, epoch: {"loss": 1.0})
    assert [r["epoch"] for r in result.history] == [1, 2, 3]
    err = capsys.readouterr().err
    assert "it was written by g2d code 0.1.0+" in err and "this is 0.1.0+updated; training starts over" in err
