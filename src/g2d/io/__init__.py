"""Files g2d writes: atomic writes, the dataset file (dataset_file) and the teachers' score cache
(score_cache), each HDF5 file with its own schema version."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any


def check_schema_version(
    path: str | os.PathLike[str], attrs: Mapping[str, Any], expected: int, kind: str, stage: str
) -> None:
    """Fail, naming the file and the stage that rewrites it, unless its `schema_version` is `expected`."""
    if "schema_version" not in attrs:
        raise ValueError(
            f"{path}: no schema_version attribute, so not a g2d {kind} of this version; rerun the {stage} stage"
        )
    if int(attrs["schema_version"]) != expected:
        raise ValueError(
            f"{path}: {kind} schema version {attrs['schema_version']}, this g2d reads {expected}; "
            f"rerun the {stage} stage"
        )
