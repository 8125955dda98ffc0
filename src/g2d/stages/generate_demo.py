"""Stage generate_demo: write the embedded demo dataset as raw files in CREMA-D's layout."""

from __future__ import annotations

from pathlib import Path

from g2d.config.params import Params
from g2d.config.schema import ConfigError
from g2d.datasets import demo


def run(params: Params, out_dir: Path, force: bool = False) -> dict:
    if params.demo is None:
        raise ConfigError("demo: missing; the generate-demo stage needs the demo section of params.yaml")
    return demo.generate(out_dir, params.demo, force)
