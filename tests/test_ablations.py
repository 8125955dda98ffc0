"""Ablation runs: where their files go, the CLI's checks and the report's per-ablation table."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from g2d import pipeline
from g2d.cli import _path, main
from g2d.stages.report import ablation_table, coefficient

PARAMS = str(Path(__file__).resolve().parents[1] / "params.yaml")


def args(**kw: object) -> argparse.Namespace:
    return argparse.Namespace(
        **{"dataset": "demo", "seed": 0, "method": "g2d", "ablation": None, "variant": None, **kw}
    )


def test_variant_files_live_under_their_ablation_and_resume_outside_it():
    base = args()
    assert _path(pipeline.STUDENT, base) == Path("runs/demo/seed0/g2d/student.pt")
    v = args(ablation="fusion", variant="concat")
    assert _path(pipeline.STUDENT, v) == Path("runs/demo/seed0/ablations/fusion/concat/g2d/student.pt")
    assert _path(pipeline.EVAL, v) == Path("runs/demo/seed0/ablations/fusion/concat/g2d/metrics.json")
    assert _path(pipeline.RESUME, v) == Path("runs/demo/seed0/resume/ablations/fusion/concat")
    assert _path(pipeline.SCORES, v) == Path("runs/demo/seed0/scores.h5")  # shared with the base runs
    assert _path(pipeline.STUDENT_LOG, v, root=Path("/tmp/x")) == Path("/tmp/x/concat/g2d/log.json")
    with pytest.raises(ValueError, match="not a per-method student file"):
        pipeline.in_variant(pipeline.SCORES)


def test_cli_refuses_half_a_variant_and_unknown_ablations(capsys):
    run = ["--params", PARAMS, "evaluate", "--dataset", "demo", "--seed", "0", "--method", "g2d"]
    assert main(run + ["--ablation", "fusion"]) == 2
    assert "--ablation and --variant go together" in capsys.readouterr().err
    assert main(["--params", PARAMS, "ablate", "--dataset", "demo", "--seed", "0", "--ablation", "fusion"]) == 2
    assert "--ablation: 'fusion' is not in params' ablations (none defined)" in capsys.readouterr().err


def stat(mean: float) -> dict:
    return {"accuracy": {"mean": mean, "std": 0.01, "values": [mean]}}


def test_ablation_table_has_a_row_per_method_and_variant():
    entry = {o: stat(0.5) for o in ("fused", "audio", "video")}
    summary = {
        "modalities": ["audio", "video"],
        "ablations": {
            "smp": {
                "over": ["tau1", "tau2"],
                "modalities": ["audio", "video"],
                "variants": {
                    "without": {"label": "without: (0, 2)", "methods": {"joint_smp": entry, "g2d": entry}},
                    "with": {"label": "with: (1, 1)", "methods": {"joint_smp": entry, "g2d": entry}},
                },
            }
        },
    }
    lines = ablation_table(summary, "smp", "accuracy", 100.0).splitlines()
    assert lines[0] == "| method | (tau1, tau2) | Multi (fused) | audio | video |"
    assert [line.split(" | ")[:2] for line in lines[2:]] == [
        ["| joint_smp", "without: (0, 2)"],
        ["| joint_smp", "with: (1, 1)"],
        ["| g2d", "without: (0, 2)"],
        ["| g2d", "with: (1, 1)"],
    ]
    assert lines[2].endswith("| 50.00 ± 1.00 | 50.00 ± 1.00 | 50.00 ± 1.00 |")


def test_a_modality_subsets_table_marks_the_branches_a_variant_does_not_have():
    """Table 2: a row per subset; a modality the subset leaves out has no branch, so its cell is '-'."""
    pair = {o: stat(0.5) for o in ("fused", "audio", "text")}
    everything = {o: stat(0.6) for o in ("fused", "audio", "video", "text")}
    summary = {
        "modalities": ["audio", "video", "text"],
        "ablations": {
            "table2": {
                "over": ["modalities"],
                "modalities": ["audio", "video", "text"],
                "variants": {
                    "audio-text": {"label": "audio + text", "methods": {"g2d": pair}},
                    "audio-video-text": {"label": "audio + video + text", "methods": {"g2d": everything}},
                },
            }
        },
    }
    lines = ablation_table(summary, "table2", "accuracy", 100.0).splitlines()
    assert lines[0] == "| method | modalities | Multi (fused) | audio | video | text |"
    assert lines[2] == "| g2d | audio + text | 50.00 ± 1.00 | 50.00 ± 1.00 | - | 50.00 ± 1.00 |"
    assert lines[3].count("60.00 ± 1.00") == 4


def test_curves_carry_whichever_coefficient_the_method_logs():
    assert coefficient({"kappa_audio": 0.0}, "audio") == 0.0
    assert coefficient({"ogm_coeff_video": 0.3}, "video") == 0.3
    assert coefficient({"agm_coeff_video": 1.4}, "video") == 1.4
    assert coefficient({"agm_coeff_video": 1.4}, "fused") == 1.0
    assert coefficient({}, "audio") == 1.0
