"""Split assignment: speaker-independent by actor, and from the literature's lists."""

from __future__ import annotations

from pathlib import Path

import pytest

from g2d.datasets.splits import SplitError, read_split_list, split_by_group, split_from_lists

LABELS = ("NEU", "HAP", "SAD", "FEA", "DIS", "ANG")


def _clips(actors: int, per_actor: int) -> tuple[list[str], list[str]]:
    ids = [f"{1001 + a}_S{i:02d}_ANG_XX" for a in range(actors) for i in range(per_actor)]
    return ids, [i.split("_")[0] for i in ids]


def test_split_by_group_keeps_each_actor_in_one_split() -> None:
    ids, groups = _clips(actors=10, per_actor=3)
    splits = split_by_group(ids, groups, val_fraction=0.1, test_fraction=0.2, seed=0)
    assert set(splits) == set(ids)
    split_of_actor: dict[str, set[str]] = {}
    for clip, group in zip(ids, groups):
        split_of_actor.setdefault(group, set()).add(splits[clip])
    assert all(len(s) == 1 for s in split_of_actor.values())
    per_split = [sum(1 for s in split_of_actor.values() if s == {name}) for name in ("train", "val", "test")]
    assert per_split == [7, 1, 2]


def test_split_by_group_is_seeded() -> None:
    ids, groups = _clips(actors=12, per_actor=2)
    first = split_by_group(ids, groups, 0.25, 0.25, seed=3)
    assert first == split_by_group(ids, groups, 0.25, 0.25, seed=3)
    assert any(first != split_by_group(ids, groups, 0.25, 0.25, seed=s) for s in range(4, 10))


def test_split_by_group_gives_every_split_a_group() -> None:
    ids, groups = _clips(actors=3, per_actor=2)
    splits = split_by_group(ids, groups, val_fraction=0.0, test_fraction=0.01, seed=0)
    assert sorted(set(splits.values())) == ["test", "train", "val"]


def test_split_by_group_needs_three_groups() -> None:
    ids, groups = _clips(actors=2, per_actor=3)
    with pytest.raises(SplitError, match="at least 3 groups"):
        split_by_group(ids, groups, 0.1, 0.1, seed=0)


def test_split_by_group_refuses_fractions_that_leave_no_training_group() -> None:
    ids, groups = _clips(actors=4, per_actor=1)
    with pytest.raises(SplitError, match="no group for training"):
        split_by_group(ids, groups, 0.5, 0.4, seed=0)


def test_read_split_list_skips_a_header_and_blank_lines(tmp_path: Path) -> None:
    path = tmp_path / "train.csv"
    path.write_text("clip,emotion\n1001_DFA_ANG_XX,ANG\n\n1002_IEO_HAP_HI, HAP\n")
    assert read_split_list(path, LABELS) == {"1001_DFA_ANG_XX": "ANG", "1002_IEO_HAP_HI": "HAP"}


def test_read_split_list_without_header(tmp_path: Path) -> None:
    path = tmp_path / "test.csv"
    path.write_text("1001_DFA_ANG_XX,ANG\n1001_DFA_SAD_XX,SAD\n")
    assert read_split_list(path, LABELS) == {"1001_DFA_ANG_XX": "ANG", "1001_DFA_SAD_XX": "SAD"}


@pytest.mark.parametrize("bad_row", ["1002_DFA_ANG_XX", "1002_DFA_ANG_XX,ANGRY", "1002_DFA_ANG_XX,ANG,extra"])
def test_read_split_list_names_the_malformed_line(tmp_path: Path, bad_row: str) -> None:
    path = tmp_path / "train.csv"
    path.write_text(f"1001_DFA_ANG_XX,ANG\n1001_DFA_SAD_XX,SAD\n{bad_row}\n")
    with pytest.raises(SplitError, match=r"train\.csv, line 3"):
        read_split_list(path, LABELS)


def test_read_split_list_rejects_conflicting_duplicates(tmp_path: Path) -> None:
    path = tmp_path / "train.csv"
    path.write_text("1001_DFA_ANG_XX,ANG\n1001_DFA_ANG_XX,SAD\n")
    with pytest.raises(SplitError, match="line 2"):
        read_split_list(path, LABELS)


def test_read_split_list_names_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SplitError, match="nowhere.csv"):
        read_split_list(tmp_path / "nowhere.csv", LABELS)


def test_split_from_lists_holds_out_val_from_train_and_leaves_unlisted_out() -> None:
    ids = [f"clip{i:02d}" for i in range(24)]
    train = {f"clip{i:02d}" for i in range(20)}
    test = {"clip20", "clip21", "clip22", "missing_clip"}
    splits = split_from_lists(ids, train, test, val_fraction=0.1, seed=0)
    assert "clip23" not in splits and "missing_clip" not in splits
    assert {c for c, s in splits.items() if s == "test"} == {"clip20", "clip21", "clip22"}
    val = {c for c, s in splits.items() if s == "val"}
    assert len(val) == 2 and val <= train
    assert {c for c, s in splits.items() if s == "train"} == train - val
    assert splits == split_from_lists(ids, train, test, val_fraction=0.1, seed=0)


def test_split_from_lists_rejects_a_clip_in_both_lists() -> None:
    with pytest.raises(SplitError, match="both the train and the test list"):
        split_from_lists(["a", "b", "c"], {"a", "b"}, {"b", "c"}, val_fraction=0.1, seed=0)
