"""The report's choices: which modality is the weak one (Figure 6) and SMP's per-phase priorities."""

from __future__ import annotations

import pytest

from g2d.stages.report import best_record, branch_ratios, priority_table, smp_priority


def _log(best: int, **per_epoch: list[float]) -> list[dict]:
    n = len(next(iter(per_epoch.values())))
    return [{"epoch": e + 1, "best_epoch": best, **{k: v[e] for k, v in per_epoch.items()}} for e in range(n)]


def test_best_record_is_the_checkpoint_the_run_kept() -> None:
    log = _log(2, val_acc=[0.5, 0.9, 0.7])
    assert best_record(log)["val_acc"] == 0.9


def test_weak_modality_is_the_branch_joint_leaves_furthest_below_its_teacher() -> None:
    # image's teacher is stronger, but joint's image branch is at 0.5x of it; audio's at 0.9x
    joint = _log(2, val_acc=[0.6, 0.7], val_acc_audio=[0.3, 0.36], val_acc_image=[0.5, 0.4])
    teachers = {"audio": _log(1, val_acc=[0.4]), "image": _log(2, val_acc=[0.6, 0.8])}
    ratios = branch_ratios(joint, teachers, classification=True)
    assert ratios == pytest.approx({"audio": 0.9, "image": 0.5})
    assert min(ratios, key=ratios.get) == "image"


def test_regression_ratio_is_teacher_mse_over_branch_mse() -> None:
    joint = _log(1, val_mse=[0.01], val_mse_a=[0.04], val_mse_b=[0.02])
    teachers = {"a": _log(1, val_mse=[0.02]), "b": _log(1, val_mse=[0.02])}
    assert branch_ratios(joint, teachers, classification=False) == pytest.approx({"a": 0.5, "b": 1.0})


def test_smp_priority_per_phase_and_table() -> None:
    log = [
        {"epoch": 1, "smp_phase": 1.0, "prioritised_a": 0.75, "prioritised_b": 0.25},
        {"epoch": 2, "smp_phase": 1.0, "prioritised_a": 0.25, "prioritised_b": 0.75},
        {"epoch": 3, "smp_phase": 2.0, "prioritised_a": 1.0, "prioritised_b": 1.0},
    ]
    shares = smp_priority(log, ["a", "b"])
    assert shares == {1: {"a": 0.5, "b": 0.5}, 2: {"a": 1.0, "b": 1.0}}
    assert smp_priority([{"epoch": 1, "loss": 1.0}], ["a", "b"]) is None  # no SMP: no entry
    stat = {"mean": 0.5, "std": 0.0, "values": [0.5]}
    summary = {
        "modalities": ["a", "b"],
        "methods": {"joint": {}, "g2d": {"smp_priority": {"1": {"a": stat, "b": stat}, "2": {"a": stat, "b": stat}}}},
    }
    lines = priority_table(summary, (2, 1))
    assert "| g2d | 1 (rank-1 modality alone), epochs 1-2 | 50.00 ± 0.00 | 50.00 ± 0.00 |" in lines
    assert any(line.startswith("| g2d | 2 (all jointly), epochs 3-3") for line in lines)
    assert priority_table({"modalities": ["a"], "methods": {"joint": {}}}, (1, 1)) == []
