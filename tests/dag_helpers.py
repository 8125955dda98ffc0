"""Helpers for the end-to-end tests: a disposable copy of the project and command runners."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from g2d.config.params import deep_merge, read_yaml

ROOT = Path(__file__).resolve().parents[1]
PROJECT_FILES = ("Snakefile", "dvc.yaml", "params.yaml", ".dvcignore", ".gitignore")
PROJECT_DIRS = ("workflow", "config")


def copy_project(dest: Path, preset: str | None = "config/presets/tiny.yaml") -> Path:
    """The pipeline's files (not src/: the installed g2d package runs) in a new folder.

    With `preset`, params.yaml is the preset merged into the shipped params.yaml.
    """
    dest.mkdir(parents=True, exist_ok=True)
    for name in PROJECT_FILES:
        shutil.copy2(ROOT / name, dest / name)
    for name in PROJECT_DIRS:
        shutil.copytree(ROOT / name, dest / name)
    (dest / ".dvc").mkdir()
    shutil.copy2(ROOT / ".dvc" / "config", dest / ".dvc" / "config")
    shutil.copy2(ROOT / ".dvc" / ".gitignore", dest / ".dvc" / ".gitignore")
    if preset:
        merged = deep_merge(read_yaml(ROOT / "params.yaml"), read_yaml(ROOT / preset))
        (dest / "params.yaml").write_text(yaml.safe_dump(merged, sort_keys=False))
    return dest


def env() -> dict[str, str]:
    """The environment for subprocesses: this interpreter's bin/ first, a git identity, no telemetry."""
    e = dict(os.environ)
    e["PATH"] = str(Path(sys.executable).parent) + os.pathsep + e.get("PATH", "")
    e.update({"GIT_AUTHOR_NAME": "g2d-test", "GIT_AUTHOR_EMAIL": "test@g2d.invalid",
              "GIT_COMMITTER_NAME": "g2d-test", "GIT_COMMITTER_EMAIL": "test@g2d.invalid",
              "DVC_NO_ANALYTICS": "1", "PYTHONUNBUFFERED": "1"})
    return e


def run(cmd: list[str], cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    """Run a command, returning its output; on failure, show the output in the assertion."""
    proc = subprocess.run(cmd, cwd=cwd, env=env(), capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-8000:]}")
    return proc
