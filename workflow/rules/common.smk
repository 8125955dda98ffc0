# Shared set-up: validate params once, hand the CLI the effective config, and describe which
# params each stage reads (Snakemake reruns a job when those values change).

import hashlib
import json
from pathlib import Path

import yaml

from g2d import pipeline
from g2d.config.params import params_from_dict
from g2d.datasets import get_source

PARAMS = params_from_dict(config)

# The CLI reads params from a file: write the merged config (params.yaml + --configfile + --config)
# to a content-addressed file so every job of this run sees exactly what Snakemake sees.
_CONFIG_TEXT = yaml.safe_dump(dict(config), sort_keys=True)
PARAMS_FILE = f".snakemake/g2d/params-{hashlib.sha256(_CONFIG_TEXT.encode()).hexdigest()[:16]}.yaml"
if not Path(PARAMS_FILE).is_file():
    Path(PARAMS_FILE).parent.mkdir(parents=True, exist_ok=True)
    Path(PARAMS_FILE).write_text(_CONFIG_TEXT)
G2D = f"g2d --params {PARAMS_FILE}"

DATASETS = list(PARAMS.datasets)
SEEDS = list(PARAMS.seeds)
METHODS = list(PARAMS.methods)
ABLATIONS = list(PARAMS.ablations)
ENV = "../envs/g2d.yaml"


wildcard_constraints:
    dataset="[A-Za-z0-9_]+",
    seed="[0-9]+",
    method="[A-Za-z0-9_]+",
    ablation="[A-Za-z0-9_]+",


def _lookup(key):
    node = config
    for part in key.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return node


def stage_params(name):
    """The values of the params stage `name` reads, as JSON: a change reruns the job."""
    spec = pipeline.stage(name)

    def values(wildcards):
        keys = [k.format(**dict(wildcards)) for k in spec.params]
        return json.dumps({k: _lookup(k) for k in keys}, sort_keys=True)

    return values


# Raw data the pipeline does not generate must exist before anything runs; say what is expected.
for _name, _ds in PARAMS.datasets.items():
    if _ds.raw_dir != pipeline.RAW_DEMO:
        get_source(_ds.source).check_raw(Path(_ds.raw_dir), _ds.preprocess)
