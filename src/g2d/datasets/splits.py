"""Train/val/test assignment: speaker-independent by group, or from the literature's split lists.

Every function here is pure and returns {sample_id: split}; the caller writes the samples.
"""

from __future__ import annotations

import math
import os
from collections import Counter
from collections.abc import Collection, Sequence

import numpy as np


class SplitError(ValueError):
    """The samples cannot be split as asked; the message says why and what to change."""


def split_by_group(
    ids: Sequence[str], groups: Sequence[str], val_fraction: float, test_fraction: float, seed: int
) -> dict[str, str]:
    """Put whole groups (speakers) in one split each, so that no speaker is seen in training and test.

    Groups are shuffled with numpy's Generator(seed); val and test get round(fraction * groups)
    groups each, at least one, and train keeps the rest (at least one).
    """
    if len(ids) != len(groups):
        raise ValueError(f"got {len(ids)} ids but {len(groups)} groups; they must be aligned")
    _check_unique(ids)
    unique = sorted(set(groups))
    n = len(unique)
    if n < 3:
        raise SplitError(
            f"a split by group needs at least 3 groups (one per split), found {n}: {unique}; "
            "add data from more speakers or split from lists instead"
        )
    n_val = max(1, _round_half_up(val_fraction * n))
    n_test = max(1, _round_half_up(test_fraction * n))
    if n_val + n_test >= n:
        raise SplitError(
            f"val_fraction {val_fraction} and test_fraction {test_fraction} of {n} groups leave "
            f"no group for training ({n_val} val + {n_test} test); lower the fractions"
        )
    order = [unique[i] for i in np.random.default_rng(seed).permutation(n)]
    split_of = {g: "test" for g in order[:n_test]}
    split_of.update({g: "val" for g in order[n_test : n_test + n_val]})
    split_of.update({g: "train" for g in order[n_test + n_val :]})
    return {sample: split_of[group] for sample, group in zip(ids, groups)}


def read_split_list(path: str | os.PathLike[str], labels: Collection[str]) -> dict[str, str]:
    """Read a split list of rows `clip,LABEL` (e.g. `1001_DFA_ANG_XX,ANG`) into {clip: label}.

    This is the format the CREMA-D literature distributes its train/test lists in. A first row
    whose label is not one of `labels` is a header and skipped; blank lines are ignored.
    """
    if not os.path.isfile(path):
        raise SplitError(f"{path}: split list not found; check split.train_list / split.test_list")
    known = set(labels)
    out: dict[str, str] = {}
    first_row = True
    with open(path, encoding="utf-8-sig") as fh:
        for line_no, line in enumerate(fh, start=1):
            text = line.strip()
            if not text:
                continue
            fields = [f.strip() for f in text.split(",")]
            if first_row and len(fields) >= 2 and fields[1] not in known:
                first_row = False
                continue
            first_row = False
            if len(fields) != 2 or not fields[0] or fields[1] not in known:
                raise SplitError(
                    f"{path}, line {line_no}: expected `clip,LABEL` with LABEL one of "
                    f"{', '.join(labels)}, got {text!r}; fix or delete that row"
                )
            clip, label = fields
            if out.get(clip, label) != label:
                raise SplitError(
                    f"{path}, line {line_no}: {clip} is listed again with label {label}, "
                    f"earlier with {out[clip]}; keep one row"
                )
            out[clip] = label
    if not out:
        raise SplitError(f"{path}: split list holds no rows; expected lines like `1001_DFA_ANG_XX,ANG`")
    return out


def split_from_lists(
    ids: Sequence[str], train_list: Collection[str], test_list: Collection[str], val_fraction: float, seed: int
) -> dict[str, str]:
    """Assign ids from the literature's train and test lists, holding out part of train as val.

    A seeded round(val_fraction * n_train) of the listed training ids (at least one) becomes val,
    so that model selection never looks at test. Ids in neither list are absent from the result.
    """
    _check_unique(ids)
    both = sorted(set(train_list) & set(test_list))
    if both:
        raise SplitError(
            f"{len(both)} clips are in both the train and the test list, e.g. {both[:3]}; "
            "a clip may be in one list only"
        )
    present = set(ids)
    train = sorted(present & set(train_list))
    test = sorted(present & set(test_list))
    if len(train) < 2 or not test:
        raise SplitError(
            f"the lists match {len(train)} training and {len(test)} test clips of the raw data; "
            "need at least 2 and 1: check that the lists name these clips"
        )
    n_val = min(len(train) - 1, max(1, _round_half_up(val_fraction * len(train))))
    held_out = {train[i] for i in np.random.default_rng(seed).permutation(len(train))[:n_val]}
    assignment = {clip: ("val" if clip in held_out else "train") for clip in train}
    assignment.update({clip: "test" for clip in test})
    return {clip: assignment[clip] for clip in ids if clip in assignment}


def hold_out_stratified(ids: Sequence[str], labels: Sequence[str], val_fraction: float, seed: int) -> set[str]:
    """The training ids to hold out as validation: round(val_fraction * n) of each label's n ids, seeded.

    Labels are visited in sorted order and each label's ids are permuted with one Generator(seed), so the
    choice depends only on the ids, labels and seed (not on their order). A label with a single training
    id keeps it in training; others keep at least one in training.
    """
    if len(ids) != len(labels):
        raise ValueError(f"got {len(ids)} ids but {len(labels)} labels; they must be aligned")
    _check_unique(ids)
    by_label: dict[str, list[str]] = {}
    for clip, label in sorted(zip(ids, labels)):
        by_label.setdefault(label, []).append(clip)
    rng = np.random.default_rng(seed)
    held_out: set[str] = set()
    for label in sorted(by_label):
        members = by_label[label]
        n_val = min(len(members) - 1, _round_half_up(val_fraction * len(members)))
        held_out.update(members[i] for i in rng.permutation(len(members))[:n_val])
    return held_out


def _check_unique(ids: Sequence[str]) -> None:
    repeated = [i for i, n in Counter(ids).items() if n > 1]
    if repeated:
        raise ValueError(f"sample ids must be unique; repeated: {sorted(repeated)[:5]}")


def _round_half_up(x: float) -> int:
    """Round as people do (0.5 -> 1), unlike Python's round-half-to-even."""
    return int(math.floor(x + 0.5))
