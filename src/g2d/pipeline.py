"""The DAG in one place: each stage's files and the params it reads.

Snakemake's rules (workflow/rules/*.smk) take their paths and params from here, and a test checks
that dvc.yaml declares the same stages, outputs and params, so the two front ends cannot drift.
Paths are relative to the project root and use {dataset}, {seed}, {method}, {ablation} and {variant}
placeholders. An ablation is one job per dataset x seed x ablation (DVC's templating cannot expand a
product whose factors depend on the ablation), which trains and evaluates each variant x method.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from g2d.methods import method_sections
from g2d.models import fusion_sections


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
ABLATION = RUN + "/ablations/{ablation}"
VARIANT_RESUME = RESUME + "/ablations/{ablation}/{variant}"  # outside ABLATION: a failed job's outputs are removed
REPORT = "reports/report.md"
SUMMARY = "reports/summary.json"
FIGURES = "reports/figures"
CURVES = "reports/curves"

METHOD_SECTIONS = tuple(method_sections())  # the baselines' knobs in params.yaml, from the method registry
FUSION_SECTIONS = tuple(fusion_sections())  # the knobs of fusions that have some (film, gated), from their registry
OPTIM = ("optimizer", "init", "lr", "momentum", "weight_decay", "scheduler", "batch_size", "device")

AUGMENT = "datasets.{dataset}.augment"
# What fresh crops depend on: teachers train on them whenever augmentation is on (any kind), so the
# bank's size (`views`) never retrains a teacher.
CROP_PARAMS = tuple(f"{AUGMENT}.{key}" for key in ("kind", "modalities", "scale", "ratio", "flip"))

STUDENT_PARAMS = ("datasets.{dataset}.encoders", "datasets.{dataset}.student", AUGMENT, "tau1", "tau2", "tau3", "alpha",
                  "beta", "temperature", "fusion", *FUSION_SECTIONS, "smp", *METHOD_SECTIONS, "teacher_cache",
                  "eval_batch_size", "data", *OPTIM)

STAGES: tuple[Stage, ...] = (
    Stage("generate_demo", outs=(RAW_DEMO,), params=("demo",)),
    Stage("preprocess", wildcards=("dataset",), deps=("{raw_dir}",), outs=(PROCESSED, PREPROCESS_REPORT),
          params=("datasets.{dataset}.source", "datasets.{dataset}.raw_dir", "datasets.{dataset}.preprocess")),
    Stage("train_teachers", wildcards=("dataset", "seed"), deps=(PROCESSED,), outs=(TEACHERS,),
          params=("datasets.{dataset}.encoders", *CROP_PARAMS, "teacher", "data", *OPTIM)),
    Stage("score", wildcards=("dataset", "seed"), deps=(PROCESSED, TEACHERS),
          outs=(SCORES, TEACHER_METRICS, TEACHER_PLOT), params=(AUGMENT, "eval_batch_size", "device", "data")),
    Stage("train_student", wildcards=("dataset", "seed", "method"), deps=(PROCESSED, SCORES, TEACHERS),
          outs=(STUDENT, STUDENT_LOG), params=STUDENT_PARAMS),
    Stage("evaluate", wildcards=("dataset", "seed", "method"), deps=(PROCESSED, SCORES, STUDENT),
          outs=(), metrics=(EVAL,), params=("eval_batch_size", "device", "data")),
    Stage("ablate", wildcards=("dataset", "seed", "ablation"), deps=(PROCESSED, SCORES, TEACHERS),
          outs=(ABLATION,), params=(*STUDENT_PARAMS, "ablations.{ablation}")),
    Stage("report", deps=("runs",), outs=(REPORT, FIGURES, CURVES), metrics=(SUMMARY,),
          params=("datasets", "seeds", "methods", "tau1", "tau2", "tau3", "ablations")),
)


def stage(name: str) -> Stage:
    for s in STAGES:
        if s.name == name:
            return s
    raise KeyError(name)


def fill(template: str, **values: object) -> str:
    """Fill a path template's placeholders."""
    return template.format(**values)


def in_variant(template: str) -> str:
    """A student file (STUDENT, STUDENT_LOG, EVAL) of an ablation variant: the same name under
    runs/{dataset}/seed{seed}/ablations/{ablation}/{variant}/{method}/; RESUME maps to VARIANT_RESUME."""
    if template == RESUME:
        return VARIANT_RESUME
    if not template.startswith(RUN + "/{method}/"):
        raise ValueError(f"{template}: not a per-method student file")
    return ABLATION + "/{variant}" + template[len(RUN):]
