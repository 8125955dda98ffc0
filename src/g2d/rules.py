"""Snakemake's rules built from g2d.pipeline: each rule's inputs, outputs, params, log and command.

workflow/rules/common.smk makes one RuleParts from the workflow's config, and every rule in
workflow/rules/*.smk takes these parts from it, keeping only what is Snakemake's own (threads, conda
env, the option that hands the threads on). Inputs are the stage's data deps and every module of the
code it runs, so that editing that code reruns it (Snakemake's mtime and input triggers).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
import shlex
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import yaml

from g2d import pipeline
from g2d.config.params import Params
from g2d.config.schema import ConfigError
from g2d.io.atomic import write_text

Wildcards = Mapping[str, str]

# The shell variable holding `g2d --params <merged config>`, set by shell_prefix before every command
# (a rule's params would make every job rerun whenever any key of the config changes).
G2D = "G2D"


def write_config(config: Mapping[str, Any], folder: Path = Path(".snakemake/g2d")) -> Path:
    """The merged config (params.yaml + --configfile + --config) in a content-addressed file, so that
    every job of a run reads exactly what Snakemake read, and runs with other configs do not clash."""
    text = yaml.safe_dump(dict(config), sort_keys=True)
    path = folder / f"params-{hashlib.sha256(text.encode()).hexdigest()[:16]}.yaml"
    if not _holds(path, text):  # absent, or truncated or edited since: its name no longer matches its content
        write_text(path, text)
    return path


CONFIG_NAME = re.compile(r"params-([0-9a-f]{16})\.yaml")


def check_config_file(path: str | Path) -> None:
    """Refuse a merged config whose content no longer has the hash in its name (truncated or edited after
    write_config wrote it): a job would otherwise run with settings nobody chose."""
    path = Path(path)
    match = CONFIG_NAME.fullmatch(path.name)
    if match is None or not path.is_file():
        return
    if hashlib.sha256(path.read_bytes()).hexdigest()[:16] != match[1]:
        raise ConfigError(
            f"{path}: its content does not match the hash in its name (truncated or edited after Snakemake wrote "
            "it); rerun snakemake, which writes it again"
        )


def _holds(path: Path, text: str) -> bool:
    """Whether `path` holds exactly `text`."""
    try:
        return path.read_text(encoding="utf-8") == text
    except (OSError, UnicodeDecodeError):
        return False


def shell_prefix(params_file: Path) -> str:
    """What runs before each rule's command: bash's strict mode, $G2D, and the front end's name for the
    project lock (g2d.io.project_lock)."""
    return f"set -euo pipefail; export G2D_FRONTEND=snakemake; {G2D}={shlex.quote(f'g2d --params {params_file}')}; "


def lookup(config: Mapping[str, Any], key: str) -> Any:
    """The value at a dotted key of the config; None where a part is missing."""
    node: Any = config
    for part in key.split("."):
        node = node.get(part) if isinstance(node, Mapping) else None
    return node


def _matches(pattern: list[str], key: list[str]) -> bool:
    """Whether dotted parts match, a {placeholder} part matching any key."""
    return len(pattern) == len(key) and all(p == k or p.startswith("{") for p, k in zip(pattern, key))


def _drop(value: Any, path: list[str]) -> Any:
    """`value` without the keys at the dotted `path` inside it, a {placeholder} part matching any key
    (a copy; unchanged where absent)."""
    if not path or not isinstance(value, dict):
        return value
    head, rest = path[0], path[1:]
    out = dict(value)
    for key in [k for k in out if _matches([head], [k])]:
        if rest:
            out[key] = _drop(out[key], rest)
        else:
            del out[key]
    return out


def without_speed_only(key: str, value: Any, wildcards: Wildcards) -> Any:
    """A param's value less what pipeline.SPEED_ONLY holds inside it (a job's wildcards filled in)."""
    parts = key.split(".")
    for speed in pipeline.SPEED_ONLY:
        pattern = [str(wildcards.get(p[1:-1], p)) if p.startswith("{") else p for p in speed.split(".")]
        if _matches(pattern[: len(parts)], parts[: len(pattern)]) and len(pattern) <= len(parts):
            raise ValueError(
                f"g2d.pipeline: {key!r} is a param of a stage, but SPEED_ONLY says {speed!r} "
                "changes nothing a stage writes"
            )
        if len(pattern) > len(parts) and _matches(pattern[: len(parts)], parts):
            value = _drop(value, pattern[len(parts) :])
    return value


class RuleParts:
    """The parts of every rule for one config (`params` is that config validated)."""

    def __init__(self, config: Mapping[str, Any], params: Params, root: Path = Path(".")) -> None:
        self.config = config
        self.validated = params
        self.root = root
        self.lists = {w: list(getattr(params, section)) for w, section in pipeline.WILDCARDS.items()}

    def code_files(self, path: str) -> list[str]:
        """A code path's modules: the file, or every .py file under the folder."""
        where = self.root / path
        if where.is_file():
            return [path]
        if where.is_dir():
            return sorted(p.relative_to(self.root).as_posix() for p in where.rglob("*.py"))
        raise FileNotFoundError(
            f"{where}: missing; the rules depend on the code each stage runs (g2d.pipeline, "
            "Stage.code): run Snakemake in the project's root, with its src/ folder"
        )

    def _expand(self, template: str, values: dict[str, Any]) -> list[str]:
        """A dep's paths for one job: its own placeholders filled, any other wildcard over every value."""
        rest = [name for name in pipeline.placeholders(template) if name not in values]
        unknown = [name for name in rest if name not in pipeline.WILDCARDS]
        if unknown:
            raise KeyError(f"{template}: placeholder {unknown[0]!r} is neither a wildcard nor a dataset field")
        return [
            pipeline.fill(template, **values, **dict(zip(rest, combo)))
            for combo in itertools.product(*(self.lists[name] for name in rest))
        ]

    def _values(self, wildcards: Wildcards) -> dict[str, Any]:
        """A job's wildcards and, for a dataset's job, the dataset's fields (raw_dir, source) and where
        its source's code is (source_module)."""
        values: dict[str, Any] = dict(wildcards)
        if "dataset" in values:
            dataset = self.validated.datasets[values["dataset"]]
            values.update({name: getattr(dataset, name) for name in pipeline.DATASET_FIELDS})
            values["source_module"] = pipeline.source_module(dataset.source)
        return values

    def inputs(self, name: str) -> Callable[[Wildcards], list[str]]:
        """Input function: the stage's data deps, then the modules of the code it runs."""
        spec = pipeline.stage(name)

        def resolve(wildcards: Wildcards) -> list[str]:
            values = self._values(wildcards)
            data = [p for dep in spec.deps for p in self._expand(dep, values)]
            code = [f for path in spec.code_paths for p in self._expand(path, values) for f in self.code_files(p)]
            return list(dict.fromkeys(data + code))

        return resolve

    def outputs(self, name: str) -> list[str]:
        """Output templates (outs and metrics); common.smk marks folders with directory()."""
        spec = pipeline.stage(name)
        return [*spec.outs, *spec.metrics]

    def params(self, name: str) -> Callable[[Wildcards], str]:
        """Param function: the values of the params the stage reads, as JSON (a change reruns the job),
        less the keys that only change speed (pipeline.SPEED_ONLY)."""
        spec = pipeline.stage(name)

        def values(wildcards: Wildcards) -> str:
            w = dict(wildcards)
            keys = [pipeline.fill(template, **w) for template in spec.params]
            return json.dumps({k: without_speed_only(k, lookup(self.config, k), w) for k in keys}, sort_keys=True)

        return values

    def resources(self, name: str) -> dict[str, Callable[[Wildcards], int]]:
        """The cluster resources of the stage's jobs (params' `resources`, per dataset where set), under
        the names Snakemake's executors read: mem_mb, runtime (minutes) and gpu (the SLURM plugin's)."""

        def field(key: str) -> Callable[[Wildcards], int]:
            return lambda wildcards: getattr(self.validated.resources.job(name, wildcards.get("dataset")), key)

        return {"mem_mb": field("mem_mb"), "runtime": field("runtime"), "gpu": field("gpus")}

    def log(self, name: str) -> str:
        return pipeline.stage(name).log()

    def shell(self, name: str, *extra: str) -> str:
        """The stage's command with Snakemake's wildcards, `extra` options, output into the log file."""
        spec = pipeline.stage(name)
        command = spec.command.replace("g2d ", f"${G2D} ", 1)
        for w in spec.wildcards:
            command = command.replace(f"{{{w}}}", f"{{wildcards.{w}}}")
        return " ".join([command, *extra, "> {log} 2>&1"])
