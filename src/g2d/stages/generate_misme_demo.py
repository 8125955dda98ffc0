"""Stage generate_misme_demo: write the synthetic MIS-ME set (photos, boxes, sheets) in MIS-ME's layout."""

from __future__ import annotations

from pathlib import Path

from g2d.config.params import Params
from g2d.config.schema import ConfigError
from g2d.datasets import misme_demo


def run(params: Params, out_dir: Path, force: bool = False) -> dict:
    if params.misme_demo is None:
        raise ConfigError(
            "misme_demo: missing; the generate-misme-demo stage needs the misme_demo section of params.yaml"
        )
    return misme_demo.generate(out_dir, params.misme_demo, force)
