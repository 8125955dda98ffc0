# Shared set-up: validate params once, hand the CLI the effective config, and build every rule's
# inputs, outputs, params, log and command from g2d.pipeline (g2d.rules): the rule files hold only
# what is Snakemake's own. A rule reruns when the values of the params it reads change, or the code
# it runs (its inputs include every module of it).

from pathlib import Path

from g2d import pipeline
from g2d.config.params import params_from_dict
from g2d.datasets import get_source
from g2d.rules import RuleParts, shell_prefix, write_config

PARAMS = params_from_dict(config)
RULES = RuleParts(config, PARAMS)
# Every command runs as `$G2D <command>`, $G2D being `g2d --params <the merged config>`.
shell.prefix(shell_prefix(write_config(config)))
ENV = "../envs/g2d.yaml"


wildcard_constraints:
    dataset="[A-Za-z0-9_]+",
    seed="[0-9]+",
    method="[A-Za-z0-9_]+",
    ablation="[A-Za-z0-9_]+",


stage_inputs = RULES.inputs
stage_params = RULES.params
stage_log = RULES.log
stage_resources = RULES.resources
stage_shell = RULES.shell


def stage_outputs(name, reported=None):
    """The stage's outputs, folders marked as such; `reported` maps an output to the keyword arguments
    of report(), which puts it in Snakemake's HTML report (snakemake --report report.html)."""
    reported = reported or {}
    unknown = set(reported) - set(RULES.outputs(name))
    if unknown:
        raise ValueError(f"stage {name!r}: reported {sorted(unknown)} are not among its outputs")
    out = []
    for path in RULES.outputs(name):
        target = directory(path) if path in pipeline.DIRECTORIES else path
        out.append(report(target, **reported[path]) if path in reported else target)
    return out


# Raw data the pipeline does not generate (the demos) must exist before anything runs; say what is expected.
for _name, _ds in PARAMS.datasets.items():
    if _ds.raw_dir not in pipeline.GENERATED_RAW:
        get_source(_ds.source).check_raw(Path(_ds.raw_dir), _ds.preprocess)
