"""Stage generate_trimodal_demo: write the synthetic three-modality set (text, audio, vision feature
sequences) in the layout `g2d convert-pickle` gives UR-Funny and IEMOCAP."""

from __future__ import annotations

from pathlib import Path

from g2d.config.params import Params
from g2d.config.schema import ConfigError
from g2d.datasets import trimodal_demo


def run(params: Params, out_dir: Path, force: bool = False) -> dict:
    if params.trimodal_demo is None:
        raise ConfigError(
            "trimodal_demo: missing; the generate-trimodal-demo stage needs the trimodal_demo section of params.yaml"
        )
    return trimodal_demo.generate(out_dir, params.trimodal_demo, force)
