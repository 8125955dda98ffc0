"""The DAG in one place: each stage's files and the params it reads.

Snakemake's rules (workflow/rules/*.smk) take their paths and params from here, and a test checks
that dvc.yaml declares the same stages, outputs and params, so the two front ends cannot drift.
Paths are relative to the project root and use {dataset}, {seed} and {method} placeholders.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Stage:
    name: str
    outs: tuple[str, ...]
    params: tuple[str, ...]
    deps: tuple[str, ...] = ()
    metrics: tuple[str, ...] = ()
    wildcards: tuple[str, ...] = field(default=())


RAW_DEMO = "data/raw/demo"
PROCESSED = "data/processed/{dataset}.h5"
PREPROCESS_REPORT = "data/processed/{dataset}.report.json"
RUN = "runs/{dataset}/seed{seed}"
TEACHERS = RUN + "/teachers"
SCORES = RUN + "/scores.h5"
TEACHER_METRICS = RUN + "/teacher_metrics.json"
TEACHER_PLOT = RUN + "/teacher_confidence.png"
STUDENT = RUN + "/{method}/student.pt"
STUDENT_LOG = RUN + "/{method}/log.json"
EVAL = RUN + "/{method}/metrics.json"
RESUME = RUN + "/resume"
REPORT = "reports/report.md"
SUMMARY = "reports/summary.json"
FIGURES = "reports/figures"
CURVES = "reports/curves"

OPTIM = ("optimizer", "lr", "momentum", "weight_decay", "scheduler", "batch_size", "device")

STAGES: tuple[Stage, ...] = (
    Stage("generate_demo", outs=(RAW_DEMO,), params=("demo",)),
    Stage("preprocess", wildcards=("dataset",), deps=("{raw_dir}",), outs=(PROCESSED, PREPROCESS_REPORT),
          params=("datasets.{dataset}.source", "datasets.{dataset}.raw_dir", "datasets.{dataset}.preprocess")),
    Stage("train_teachers", wildcards=("dataset", "seed"), deps=(PROCESSED,), outs=(TEACHERS,),
          params=("datasets.{dataset}.encoders", "teacher", "data", *OPTIM)),
    Stage("score", wildcards=("dataset", "seed"), deps=(PROCESSED, TEACHERS),
          outs=(SCORES, TEACHER_METRICS, TEACHER_PLOT), params=("eval_batch_size", "device", "data")),
    Stage("train_student", wildcards=("dataset", "seed", "method"), deps=(PROCESSED, SCORES, TEACHERS),
          outs=(STUDENT, STUDENT_LOG),
          params=("datasets.{dataset}.encoders", "tau1", "tau2", "tau3", "alpha", "beta", "temperature", "fusion",
                  "smp", "teacher_cache", "eval_batch_size", "data", *OPTIM)),
    Stage("evaluate", wildcards=("dataset", "seed", "method"), deps=(PROCESSED, SCORES, STUDENT),
          outs=(), metrics=(EVAL,), params=("eval_batch_size", "device", "data")),
    Stage("report", deps=("runs",), outs=(REPORT, FIGURES, CURVES), metrics=(SUMMARY,),
          params=("datasets", "seeds", "methods", "tau1", "tau2", "tau3")),
)


def stage(name: str) -> Stage:
    for s in STAGES:
        if s.name == name:
            return s
    raise KeyError(name)


def fill(template: str, **values: object) -> str:
    """Fill a path template's placeholders."""
    return template.format(**values)
