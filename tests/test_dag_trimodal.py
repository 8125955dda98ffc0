"""Three modalities end to end on the tiny three-modality demo (config/presets/trimodal-tiny.yaml),
through Snakemake and through `dvc repro`: .npz feature sequences in convert-pickle's layout -> the
`arrays` source -> three teachers -> joint and G2D with three SMP phases -> every modality subset
(paper Table 2) -> a report with the subsets table and the modality gap (Figure 4)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dag_helpers import copy_project, dvc_repro_in_new_repo, run

pytestmark = pytest.mark.slow
PRESET = "config/presets/trimodal-tiny.yaml"
MODS = ("text", "audio", "vision")
SUBSETS = ("text-audio", "text-vision", "audio-vision", "text-audio-vision")


def check_outputs(proj: Path) -> None:
    """Three SMP phases; Table 2 with a row per method x subset, '-' where a subset lacks a branch;
    the gap per method with its figure."""
    seed0 = proj / "runs/trimodal/seed0"
    log = json.loads((seed0 / "g2d/log.json").read_text())
    assert sorted({r["smp_phase"] for r in log}) == [1, 2, 3]
    assert sorted(p.name for p in (seed0 / "teachers").glob("*.pt")) == sorted(f"{m}.pt" for m in MODS)
    variants = (seed0 / "ablations/modality_subsets").iterdir()
    assert sorted(p.name for p in variants if not p.name.startswith(".")) == sorted(SUBSETS)  # not Snakemake's marker
    pair = json.loads((seed0 / "ablations/modality_subsets/audio-vision/g2d/metrics.json").read_text())
    assert set(pair["test"]) == {"fused", "audio", "vision"}

    report = (proj / "reports/report.md").read_text()
    table = report.split("### Ablation modality_subsets", 1)[1].split("\n\n")[1].splitlines()
    assert table[0] == "| method | modalities | Multi (fused) | text | audio | vision |"
    rows = [[cell.strip() for cell in line.strip("|").split("|")] for line in table[2:]]
    assert [(r[0], r[1]) for r in rows] == [("g2d", s.replace("-", " + ")) for s in SUBSETS]
    assert rows[0][5] == "-" and rows[2][3] == "-"  # text + audio has no vision branch; audio + vision no text

    gap_table = report.split("### Modality gap (Fig. 4)", 1)[1].split("\n\n")[2].splitlines()
    assert [line.split(" | ")[0] for line in gap_table[2:]] == ["| joint", "| g2d"]
    assert (proj / "reports/figures/trimodal_g2d_modality_gap.png").stat().st_size > 0
    gap = json.loads((seed0 / "g2d/modality_gap.json").read_text())
    assert set(gap["points"]) == set(MODS) and set(gap["pairs"]) == {"text-audio", "text-vision", "audio-vision"}
    summary = json.loads((proj / "reports/summary.json").read_text())["trimodal"]
    assert set(summary["ablations"]["modality_subsets"]["variants"]) == set(SUBSETS)  # JSON keys are sorted
    assert summary["methods"]["g2d"]["modality_gap"]["mean"] is not None


def test_three_modalities_through_snakemake(tmp_path):
    proj = copy_project(tmp_path / "proj", preset=PRESET)
    out = run(["snakemake", "--cores", "2"], proj)
    assert "generate_trimodal_demo" in out.stdout + out.stderr
    check_outputs(proj)


def test_three_modalities_through_dvc(tmp_path):
    proj = copy_project(tmp_path / "proj", preset=PRESET)
    assert dvc_repro_in_new_repo(proj) == {
        "generate_demo",  # DVC runs every stage of dvc.yaml; the other demos are unused here
        "generate_misme_demo",
        "generate_trimodal_demo",
        "preprocess@trimodal",
        "train_teachers@trimodal-0",
        "score@trimodal-0",
        *(f"{stage}@trimodal-0-{m}" for stage in ("train_student", "evaluate") for m in ("joint", "g2d")),
        "ablate@trimodal-0-modality_subsets",
        "report",
    }
    check_outputs(proj)
