"""Stage preprocess: raw files of one dataset -> one HDF5 file and a report of skipped inputs."""

from __future__ import annotations

from pathlib import Path

from g2d.config.params import Params
from g2d.config.schema import ConfigError
from g2d.datasets import get_source


def run(params: Params, dataset: str, out_path: Path, report_path: Path, workers: int | None = None) -> None:
    if dataset not in params.datasets:
        raise ConfigError(f"datasets.{dataset}: missing; configured datasets: {', '.join(params.datasets)}")
    cfg = params.datasets[dataset]
    source = get_source(cfg.source)
    raw_dir = Path(cfg.raw_dir)
    source.check_raw(raw_dir, cfg.preprocess)
    n_workers = workers if workers is not None else cfg.preprocess.workers
    source.preprocess(dataset, raw_dir, cfg.preprocess, out_path, report_path, n_workers)
