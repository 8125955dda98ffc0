"""Style and types, checked as part of the suite so `.ci/run` enforces them.

ruff (lint and format, settings in pyproject.toml) over the whole repository, and mypy over the
package, which promises its type hints (src/g2d/py.typed). A failure prints the tool's own report;
`ruff format .` and `ruff check --fix .` repair most of what ruff finds.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run_tool(*args: str) -> subprocess.CompletedProcess[str]:
    """Run `python -m <tool> ...` in the repository root, output captured."""
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, check=False)


@pytest.mark.parametrize(
    "args",
    [("ruff", "check", "--no-cache", "."), ("ruff", "format", "--check", "--no-cache", ".")],
    ids=["ruff-check", "ruff-format"],
)
def test_ruff_is_clean(args):
    out = run_tool(*args)
    assert out.returncode == 0, f"`{' '.join(args)}` found problems:\n{out.stdout}{out.stderr}"


def test_package_type_checks():
    out = run_tool("mypy", "--cache-dir", str(ROOT / ".mypy_cache"))
    assert out.returncode == 0, f"mypy found type errors in src/g2d:\n{out.stdout}{out.stderr}"


def test_lint_catches_a_problem(tmp_path):
    """The check above is live: ruff flags an unused import in a file written with the project's config."""
    bad = tmp_path / "bad.py"
    bad.write_text("import os\n")
    out = run_tool("ruff", "check", "--no-cache", "--config", str(ROOT / "pyproject.toml"), str(bad))
    assert out.returncode != 0 and "F401" in out.stdout
