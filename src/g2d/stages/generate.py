"""Stage generate_<name>: write a synthetic dataset in some source's raw layout with demo generator
`name` (g2d.datasets.GENERATORS: demo, misme_demo, trimodal_demo), configured by its params section."""

from __future__ import annotations

from pathlib import Path

from g2d.config.params import Params
from g2d.config.schema import ConfigError
from g2d.datasets import get_generator


def run(params: Params, name: str, out_dir: Path, force: bool = False) -> dict:
    """Write generator `name`'s files to `out_dir` (replacing only an earlier demo, or with `force`)."""
    options = params.generators.get(name)
    if options is None:
        raise ConfigError(
            f"{name}: missing; the generate-{name.replace('_', '-')} stage needs the {name} section of params.yaml"
        )
    return get_generator(name).generate(out_dir, options, force)
