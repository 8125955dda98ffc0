"""Dataset sources: one module per raw format, each turning raw files into the HDF5 schema.

A source module exposes:
  - `Params`: a frozen dataclass of its preprocessing knobs (the `datasets.<name>.preprocess`
    section of params.yaml), parsed with `g2d.config.schema.parse`;
  - `MODALITIES`: the modality names it writes, in model order;
  - `IMAGE_MODALITIES`: those that are images (C, H, W) or frame stacks (T, C, H, W), the ones
    training-time augmentation (`datasets.<name>.augment`) may crop and flip;
  - `check_raw(raw_dir, params)`: raise `RawDataError` describing the expected layout if it is absent;
  - `preprocess(dataset, raw_dir, params, out_path, report_path, workers)`: write the HDF5
    file and a JSON report of what was skipped.
Add a source by writing a module and naming it in `SOURCES`.
"""

from __future__ import annotations

import importlib
from types import ModuleType

SOURCES: dict[str, str] = {
    "avmnist": "g2d.datasets.avmnist",
    "cremad": "g2d.datasets.cremad",
}


class RawDataError(RuntimeError):
    """Raw input is missing or unusable; the message names the file and how to fix it."""


def get_source(name: str) -> ModuleType:
    """Import the module of source `name`."""
    if name not in SOURCES:
        raise KeyError(f"unknown dataset source {name!r}; available: {', '.join(sorted(SOURCES))}")
    return importlib.import_module(SOURCES[name])
