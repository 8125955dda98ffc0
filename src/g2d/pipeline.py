"""The DAG in one place: each stage's files, the params it reads and the code it runs.

Both front ends are built from these declarations: `g2d dvc-yaml` writes dvc.yaml from them (a test
fails while the committed file differs), and Snakemake's rules (workflow/rules/*.smk) take their
inputs, outputs, params and command from g2d.rules, which reads them. Paths are relative to the
project root and use placeholders:

- {dataset}, {seed}, {method}, {ablation}: wildcards, each ranging over a list of params.yaml
  (WILDCARDS). In a stage's own wildcards they name its jobs; in its deps, any other one means
  "every value" (the report reads every run).
- {raw_dir}, {source}: fields of the dataset's params (DATASET_FIELDS), in the preprocess stage;
  {source_module}: where that source's code is (source_module).
- {variant}: an ablation variant (in_variant), which only `g2d ablate` expands.

An ablation is one job per dataset x seed x ablation (DVC's templating cannot expand a product whose
factors depend on the ablation), which trains and evaluates each variant x method.
"""

from __future__ import annotations

import shutil
import string
from dataclasses import dataclass
from pathlib import Path

from g2d.methods import method_sections
from g2d.models import fusion_sections

WILDCARDS: dict[str, str] = {"dataset": "datasets", "seed": "seeds", "method": "methods", "ablation": "ablations"}
DATASET_FIELDS = ("raw_dir", "source")

RAW_DEMO = "data/raw/demo"
RAW_MISME_DEMO = "data/raw/misme-demo"
RAW_TRIMODAL_DEMO = "data/raw/trimodal-demo"
GENERATED_RAW = frozenset(
    {RAW_DEMO, RAW_MISME_DEMO, RAW_TRIMODAL_DEMO}
)  # raw folders a stage writes (no check_raw before the run)
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
GAP = RUN + "/{method}/modality_gap.json"  # Figure 4's 2-D projection of the student's features
RESUME = RUN + "/resume"
ABLATION = RUN + "/ablations/{ablation}"
VARIANT_RESUME = RESUME + "/ablations/{ablation}/{variant}"  # outside ABLATION: a failed job's outputs are removed
REPORT = "reports/report.md"
SUMMARY = "reports/summary.json"
FIGURES = "reports/figures"
CURVES = "reports/curves"

DIRECTORIES = frozenset({*GENERATED_RAW, TEACHERS, ABLATION, FIGURES, CURVES})  # outputs that are folders
PLOTS: dict[str, dict[str, object]] = {CURVES: {"x": "epoch", "y": ["train", "val", "coeff"]}}  # dvc plots show
LOGS = "logs"  # Snakemake's per-job log files

METHOD_SECTIONS = tuple(method_sections())  # the baselines' knobs in params.yaml, from the method registry
FUSION_SECTIONS = tuple(fusion_sections())  # the knobs of fusions that have some (film, gated), from their registry
OPTIM = ("optimizer", "init", "lr", "momentum", "weight_decay", "scheduler", "batch_size", "device", "precision")

AUGMENT = "datasets.{dataset}.augment"
# What fresh crops depend on: teachers train on them whenever augmentation is on (any kind), so the
# bank's size (`views`) never retrains a teacher.
CROP_PARAMS = tuple(f"{AUGMENT}.{key}" for key in ("kind", "modalities", "scale", "ratio", "flip"))

STUDENT_PARAMS = (
    "datasets.{dataset}.encoders",
    "datasets.{dataset}.student",
    AUGMENT,
    "tau1",
    "tau2",
    "tau3",
    "alpha",
    "beta",
    "temperature",
    "fusion",
    "modalities",
    *FUSION_SECTIONS,
    "smp",
    *METHOD_SECTIONS,
    "teacher_cache",
    "eval_batch_size",
    *OPTIM,
)

# Params that change only how fast a stage runs, never what it writes: no stage depends on them, so
# changing one reruns nothing. `data` (memory or streamed loading, DataLoader workers) gives the same
# batches bit for bit (tests/test_data_loading.py); preprocessing writes the same bytes with any
# number of workers (tests/test_cremad.py, tests/test_avmnist.py). A key inside a declared section
# (preprocess.workers) is dropped from it by Snakemake; DVC can only track a section whole, and this
# section's keys differ per source, so there a change of `workers` still reruns preprocessing.
SPEED_ONLY = ("data", "datasets.{dataset}.preprocess.workers")

# The code each stage runs, as paths under src/g2d (a folder: every module in it). Not listed, for
# any stage: what validates params and hands a stage its params and paths, which are deps of their
# own: cli.py, config/, errors.py (the error types), pipeline.py, registry.py and the registries (the
# __init__ modules of datasets/, methods/ and models/; a registered module a stage loads by name is
# among its code). io/ is listed whole (the file formats and atomic writes), so that its modules may
# be split or moved within it. tests/test_dag_spec.py checks that every g2d module a stage's code
# imports is listed.
SRC = "src/g2d"
# A dataset's source (its `source`, named in g2d.datasets.SOURCES): its module, or its package folder
# for a source with parts (see source_module). DVC's templating cannot compute this path from the
# dataset's `source`, so dvc.yaml's preprocess stage depends on every registered source's code.
SOURCE_MODULE = "{source_module}"
RAW_TO_HDF5 = (
    "datasets/common.py",
    "datasets/parallel.py",
    "datasets/resume.py",
    "datasets/splits.py",
    "transforms/audio.py",
    "transforms/av_clip.py",
    "transforms/video.py",
    "transforms/degrade.py",
    "io",
)  # shared by every source
CREMAD = (
    "datasets/cremad.py",
    "datasets/common.py",
    "datasets/parallel.py",
    "datasets/splits.py",
    "transforms/audio.py",
    "transforms/video.py",
    "io",
)  # the CREMA-D source and what it imports
READ = ("io", "types.py", "training/data.py", "training/augment.py", "transforms/augment.py")  # HDF5 -> batches
MODEL = ("models", "training/optim.py", "training/checkpoint.py")
FIT = ("training/engine.py", "training/distributed.py", "training/precision.py")
TEACHER = ("training/teacher.py", "methods/losses.py", "methods/confidence.py", *FIT)  # its loss and confidence
STUDENT_CODE = ("training/student.py", "training/predict.py", "methods")
PREDICT = ("training/predict.py", "training/metrics.py")
EVALUATE = ("training/probe.py", "training/gap.py")  # what evaluate adds to predictions: probes, the gap


def source_module(source: str) -> str:
    """Where the code of dataset source `source` is, under SRC: its module file, or its package folder."""
    from g2d.datasets import SOURCES

    if source not in SOURCES:
        raise KeyError(f"unknown dataset source {source!r}; available: {', '.join(sorted(SOURCES))}")
    path = SOURCES[source].removeprefix("g2d.").replace(".", "/")
    return path if (Path(__file__).parent / path / "__init__.py").is_file() else path + ".py"


def source_modules() -> dict[str, str]:
    """{source: where its code is under SRC} of every registered source."""
    from g2d.datasets import SOURCES

    return {name: source_module(name) for name in SOURCES}


@dataclass(frozen=True)
class Stage:
    """One stage: its files, params and code, and the `g2d` command that runs it."""

    name: str
    doc: str  # why the stage exists or is shaped so (a comment in dvc.yaml)
    outs: tuple[str, ...]
    params: tuple[str, ...]
    code: tuple[str, ...]  # paths under SRC
    deps: tuple[str, ...] = ()
    metrics: tuple[str, ...] = ()
    wildcards: tuple[str, ...] = ()

    @property
    def command(self) -> str:
        """The command line, wildcards as placeholders: `g2d <name> --<wildcard> {<wildcard>} ...`."""
        return " ".join(["g2d", self.name.replace("_", "-"), *(f"--{w} {{{w}}}" for w in self.wildcards)])

    @property
    def code_paths(self) -> tuple[str, ...]:
        """The code deps as project paths, without one that a listed folder already holds."""
        paths = [f"{SRC}/{p}" for p in self.code]
        return tuple(dict.fromkeys(p for p in paths if not any(p.startswith(q + "/") for q in paths)))

    def log(self) -> str:
        """Snakemake's log file of a job: logs/<stage>/<wildcards joined by '-'>.log, DVC's stage name."""
        if not self.wildcards:
            return f"{LOGS}/{self.name}.log"
        return f"{LOGS}/{self.name}/" + "-".join(f"{{{w}}}" for w in self.wildcards) + ".log"


STAGES: tuple[Stage, ...] = (
    Stage(
        "generate_demo",
        "The demo dataset's raw files, in CREMA-D's layout (its class names come from cremad.py, "
        "so its code is cremad.py and what that imports too).",
        outs=(RAW_DEMO,),
        params=("demo",),
        code=("stages/generate.py", "datasets/demo.py", *CREMAD),
    ),
    Stage(
        "generate_misme_demo",
        "The synthetic MIS-ME set's raw files (photos, YOLO boxes, weather sheets) in MIS-ME's layout; "
        "it writes the patches and checks its boxes with the misme source's code.",
        outs=(RAW_MISME_DEMO,),
        params=("misme_demo",),
        code=(
            "stages/generate.py",
            "datasets/misme_demo.py",
            "datasets/misme",
            "datasets/common.py",
            "datasets/parallel.py",
            "io",
        ),
    ),
    Stage(
        "generate_trimodal_demo",
        "The synthetic three-modality set (text, audio, vision feature sequences, text dominant) in the "
        "layout convert-pickle gives UR-Funny and IEMOCAP.",
        outs=(RAW_TRIMODAL_DEMO,),
        params=("trimodal_demo",),
        code=("stages/generate.py", "datasets/trimodal_demo.py", "io"),
    ),
    Stage(
        "preprocess",
        "Raw files -> HDF5, one job per dataset; the code is its source's module and the shared "
        "transforms (here every source's: DVC cannot look up a dataset's source's module).",
        wildcards=("dataset",),
        deps=("{raw_dir}",),
        outs=(PROCESSED, PREPROCESS_REPORT),
        params=("datasets.{dataset}.source", "datasets.{dataset}.raw_dir", "datasets.{dataset}.preprocess"),
        code=("stages/preprocess.py", SOURCE_MODULE, *RAW_TO_HDF5),
    ),
    Stage(
        "train_teachers",
        "One unimodal teacher per modality, per dataset x seed.",
        wildcards=("dataset", "seed"),
        deps=(PROCESSED,),
        outs=(TEACHERS,),
        params=("datasets.{dataset}.encoders", *CROP_PARAMS, "teacher", *OPTIM),
        code=("stages/train_teachers.py", *READ, *MODEL, *TEACHER),
    ),
    Stage(
        "score",
        "The teachers' features, logits and confidence, cached for every student (and the view bank).",
        wildcards=("dataset", "seed"),
        deps=(PROCESSED, TEACHERS),
        outs=(SCORES, TEACHER_METRICS, TEACHER_PLOT),
        params=(AUGMENT, "eval_batch_size", "device", "precision"),
        code=("stages/score.py", *READ, *MODEL, *TEACHER, *PREDICT, "plots.py"),
    ),
    Stage(
        "train_student",
        "The multimodal student, one job per dataset x seed x method.",
        wildcards=("dataset", "seed", "method"),
        deps=(PROCESSED, SCORES, TEACHERS),
        outs=(STUDENT, STUDENT_LOG),
        params=STUDENT_PARAMS,
        code=("stages/train_student.py", *READ, *MODEL, *TEACHER, *STUDENT_CODE),
    ),
    Stage(
        "evaluate",
        "Test metrics of a trained student.",
        wildcards=("dataset", "seed", "method"),
        deps=(PROCESSED, SCORES, STUDENT),
        outs=(GAP,),
        metrics=(EVAL,),
        params=("eval_batch_size", "device", "precision"),
        code=("stages/evaluate.py", *READ, *MODEL, *TEACHER, *STUDENT_CODE, *PREDICT, *EVALUATE),
    ),
    Stage(
        "ablate",
        "One job per dataset x seed x ablation (params.yaml's `ablations`; none by default): DVC's "
        "templating cannot take a product whose lists depend on the ablation, so each job trains and "
        "evaluates all of its variant x method runs.",
        wildcards=("dataset", "seed", "ablation"),
        deps=(PROCESSED, SCORES, TEACHERS),
        outs=(ABLATION,),
        params=(*STUDENT_PARAMS, "ablations.{ablation}"),
        code=(
            "stages/train_student.py",
            "stages/evaluate.py",
            *READ,
            *MODEL,
            *TEACHER,
            *STUDENT_CODE,
            *PREDICT,
            *EVALUATE,
        ),
    ),
    Stage(
        "report",
        "Tables, figures and curves over every run.",
        deps=(EVAL, GAP, STUDENT_LOG, TEACHERS, ABLATION),
        outs=(REPORT, FIGURES, CURVES),
        metrics=(SUMMARY,),
        params=("datasets", "seeds", "methods", "tau1", "tau2", "tau3", "ablations"),
        code=("stages/report.py", "plots.py", "io"),
    ),
)


def stage(name: str) -> Stage:
    for s in STAGES:
        if s.name == name:
            return s
    raise KeyError(f"{name!r} is not a stage of g2d.pipeline; stages: {', '.join(s.name for s in STAGES)}")


def placeholders(template: str) -> list[str]:
    """The placeholder names of a path template, in order."""
    return [field for _, field, _, _ in string.Formatter().parse(template) if field]


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
    return ABLATION + "/{variant}" + template[len(RUN) :]


# What a copy of the project needs for both front ends to run it (the code deps under src/ included).
PROJECT_FILES = (
    "Snakefile",
    "workflow",
    "dvc.yaml",
    "params.yaml",
    "config",
    "src",
    ".dvcignore",
    ".gitignore",
    ".dvc/config",
    ".dvc/.gitignore",
)


def copy_project(root: Path, dest: Path) -> Path:
    """A runnable copy of the project at `root` in `dest`, without build or cache files: tests,
    benchmarks and checks run the DAG in scratch copies, never in the checkout."""
    for name in PROJECT_FILES:
        source, target = root / name, dest / name
        if not source.exists():
            raise FileNotFoundError(f"{source}: missing; a copy of the project needs {', '.join(PROJECT_FILES)}")
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        else:
            shutil.copy2(source, target)
    return dest
