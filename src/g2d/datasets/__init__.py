"""Dataset sources: one module (or package, as avmnist) per raw format, each turning raw files into
the dataset file (g2d.io.dataset_file).

A source module exposes:
  - `Params`: a frozen dataclass of its preprocessing knobs (the `datasets.<name>.preprocess`
    section of params.yaml), parsed with `g2d.config.schema.parse`;
  - `MODALITIES`: the modality names it writes, in model order (a source whose modalities its params
    name, as `arrays`, has functions `modalities(params)` and `image_modalities(params)` instead);
  - `IMAGE_MODALITIES`: those that are images (C, H, W) or frame stacks (T, C, H, W), the ones
    training-time augmentation (`datasets.<name>.augment`) may crop and flip;
  - `check_raw(raw_dir, params)`: raise `RawDataError` describing the expected layout if it is absent;
  - `preprocess(dataset, raw_dir, params, out_path, report_path, workers)`: write the HDF5
    file and a JSON report of what was skipped: find the raw inputs, decode them into samples
    (or skip records) and hand those to `g2d.datasets.common.write_dataset`, which writes both.
Add a source by writing a module and naming it in `SOURCES`. Validating params imports the source
module (for its `Params` and modalities), so it must not import torch.

Demo generators (`GENERATORS`) write a synthetic dataset in some source's raw layout. Each is a module
with `Params` (its params.yaml section, named as the generator) and `generate(out_dir, params, force)`;
each has a stage (g2d.pipeline, `generate_<name>`) and a CLI command (`g2d generate-<name>`).
"""

from __future__ import annotations

import importlib
from types import ModuleType

from g2d.errors import G2DError

SOURCES: dict[str, str] = {
    "arrays": "g2d.datasets.arrays",
    "avmnist": "g2d.datasets.avmnist",
    "cremad": "g2d.datasets.cremad",
    "misme": "g2d.datasets.misme",
    "vggsound": "g2d.datasets.vggsound",
}


GENERATORS: dict[str, tuple[str, str]] = {  # name: (module, what it writes)
    "demo": ("g2d.datasets.demo", "the demo dataset's raw files (CREMA-D layout)"),
    "misme_demo": ("g2d.datasets.misme_demo", "the MIS-ME demo's raw files (photos, YOLO boxes, weather sheets)"),
    "trimodal_demo": (
        "g2d.datasets.trimodal_demo",
        "the three-modality demo's raw files (text, audio, vision sequences as convert-pickle's .npz)",
    ),
}


class RawDataError(G2DError, RuntimeError):
    """Raw input is missing or unusable; the message names the file and how to fix it."""


def get_source(name: str) -> ModuleType:
    """Import the module of source `name`."""
    if name not in SOURCES:
        raise KeyError(f"unknown dataset source {name!r}; available: {', '.join(sorted(SOURCES))}")
    return importlib.import_module(SOURCES[name])


def get_generator(name: str) -> ModuleType:
    """Import the module of demo generator `name` (its params section's name)."""
    if name not in GENERATORS:
        raise KeyError(f"unknown demo generator {name!r}; available: {', '.join(sorted(GENERATORS))}")
    return importlib.import_module(GENERATORS[name][0])
