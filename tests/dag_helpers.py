"""Helpers for the end-to-end tests: a disposable copy of the project and command runners."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import yaml

from g2d.config.params import deep_merge, read_yaml
from g2d.pipeline import copy_project as copy_files

ROOT = Path(__file__).resolve().parents[1]


def copy_project(dest: Path, preset: str | None = "config/presets/tiny.yaml") -> Path:
    """The project (front ends, params, presets and src/, the code its stages depend on) in a new folder;
    the commands run there use that copy's src/ (see env).

    With `preset`, params.yaml is the preset merged into the shipped params.yaml.
    """
    copy_files(ROOT, dest)
    if preset:
        merged = deep_merge(read_yaml(ROOT / "params.yaml"), read_yaml(ROOT / preset))
        (dest / "params.yaml").write_text(yaml.safe_dump(merged, sort_keys=False))
    return dest


def env(cwd: Path | None = None) -> dict[str, str]:
    """The environment for subprocesses: this interpreter's bin/ first, the g2d of cwd/src when there is
    one (the code its stages depend on), a git identity, no telemetry."""
    e = dict(os.environ)
    e["PATH"] = str(Path(sys.executable).parent) + os.pathsep + e.get("PATH", "")
    if cwd is not None and (cwd / "src" / "g2d").is_dir():
        e["PYTHONPATH"] = os.pathsep.join(filter(None, [str(cwd / "src"), e.get("PYTHONPATH")]))
    e.update(
        {
            "GIT_AUTHOR_NAME": "g2d-test",
            "GIT_AUTHOR_EMAIL": "test@g2d.invalid",
            "GIT_COMMITTER_NAME": "g2d-test",
            "GIT_COMMITTER_EMAIL": "test@g2d.invalid",
            "DVC_NO_ANALYTICS": "1",
            "PYTHONUNBUFFERED": "1",
        }
    )
    return e


def run(cmd: list[str], cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    """Run a command, returning its output; on failure, show the output in the assertion."""
    proc = subprocess.run(cmd, cwd=cwd, env=env(cwd), capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise AssertionError(
            f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-8000:]}"
        )
    return proc


def ran_stages(output: str) -> set[str]:
    """The DVC stages a `dvc repro` or `dvc exp run` output says it ran."""
    return set(re.findall(r"Running stage '([^']+)'", output))


def dvc_repro_in_new_repo(proj: Path) -> set[str]:
    """`dvc repro` in `proj` made a git repository with one commit (what DVC needs); the stages it ran."""
    run(["git", "init", "-q"], proj)
    run(["git", "add", "-A"], proj)
    run(["git", "commit", "-qm", "pipeline"], proj)
    return ran_stages(run(["dvc", "repro"], proj).stdout)
