"""The typed view of params.yaml, validated once at load.

Every knob of the pipeline lives in params.yaml; stages receive a `Params` object and never read
YAML themselves. Overlay files (a preset, Snakemake's --configfile) are deep-merged in order.

The sections of methods' and fusions' knobs (ogm_ge, film, ...) are not listed here: each is the
options dataclass of its registry entry (g2d.methods.METHODS, g2d.models.FUSIONS), so a method or a
fusion added to its registry is validated, overridden and ablated like the others. Validation
imports those registries and the dataset sources, never torch.
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar, get_type_hints

import yaml

from g2d.config.schema import ConfigError, coerce, parse, require
from g2d.datasets import GENERATORS, SOURCES, get_generator, get_source
from g2d.methods import METHODS, method_entry, method_section, method_sections
from g2d.methods.options import SMPParams
from g2d.models import FUSIONS, encoder_options, fusion_section, fusion_sections

T = TypeVar("T")

TAU_KEY = re.compile(r"^tau([1-9][0-9]*)$")


@dataclass(frozen=True)
class SchedulerParams:
    """Learning-rate schedule: StepLR (the paper's) or constant."""

    name: Literal["step", "none"] = "step"
    step_size: int = 200
    gamma: float = 0.1

    def validate(self, where: str) -> None:
        require(self.step_size > 0, f"{where}.step_size", "must be a positive number of epochs")
        require(0 < self.gamma <= 1, f"{where}.gamma", "must be in (0, 1]")


@dataclass(frozen=True)
class TeacherParams:
    """How unimodal teachers are trained (optimizer settings are the shared top-level ones)."""

    epochs: int = 30

    def validate(self, where: str) -> None:
        require(self.epochs > 0, f"{where}.epochs", "must be a positive number of epochs")


# A plain folder name: letters, digits, _ + - and dots inside (never `.` or `..`, never hidden).
VARIANT_NAME = re.compile(r"^[A-Za-z0-9_+-]([A-Za-z0-9_.+-]*[A-Za-z0-9_+-])?$")


@dataclass(frozen=True)
class AblationParams:
    """One ablation (paper Tables 4-7): `methods` retrained under each variant, a variant being the base
    params with the student keys `over` set to one entry of `values`; the report gives it one table."""

    over: str | tuple[str, ...]
    values: Literal["subsets"] | tuple[Any, ...]
    methods: tuple[str, ...]
    names: tuple[str, ...] = ()

    @property
    def keys(self) -> tuple[str, ...]:
        return (self.over,) if isinstance(self.over, str) else self.over

    @property
    def per_dataset(self) -> bool:
        """`values: subsets`: the variants are the subsets of each dataset's own modalities."""
        return self.values == "subsets"

    def overrides(self, modalities: Sequence[str] | None = None) -> dict[str, dict[str, Any]]:
        """Variant name -> {dotted key: value}; names are `names` or derived from the values (2-4 for [2, 4]).
        With `values: subsets`, every subset of two or more of `modalities` (a dataset's), smallest first."""
        if self.per_dataset:
            if modalities is None:
                raise ConfigError("values: subsets: the variants depend on the dataset; ask for one dataset's")
            values: tuple[Any, ...] = tuple(
                list(combo) for k in range(2, len(modalities) + 1) for combo in itertools.combinations(modalities, k)
            )
        else:
            values = self.values  # type: ignore[assignment]
        return {
            name: dict(zip(self.keys, value if len(self.keys) > 1 else (value,)))
            for name, value in zip(self.names or [_variant_name(v) for v in values], values)
        }

    def validate(self, where: str) -> None:
        require(len(self.keys) > 0, f"{where}.over", "name at least one student param, e.g. fusion")
        if self.per_dataset:
            require(
                self.keys == ("modalities",) and not self.names,
                f"{where}.values",
                "subsets (every combination of two or more of a dataset's modalities) goes with over: modalities "
                "and no names",
            )
        require(len(self.methods) > 0, f"{where}.methods", f"name at least one of {', '.join(METHODS)}")
        for i, method in enumerate(self.methods):
            require(
                method in METHODS,
                f"{where}.methods[{i}]",
                f"unknown method {method!r}; choose from {', '.join(METHODS)}",
            )
        if self.per_dataset:
            return
        require(len(self.values) > 0, f"{where}.values", "give at least one value (one per variant)")
        for i, value in enumerate(self.values):
            if len(self.keys) > 1:
                require(
                    isinstance(value, (list, tuple)) and len(value) == len(self.keys),
                    f"{where}.values[{i}]",
                    f"expected a list of {len(self.keys)} values, one per key of `over` {list(self.keys)}",
                )
        if self.names:
            require(
                len(self.names) == len(self.values),
                f"{where}.names",
                f"give one name per value ({len(self.values)}), or leave names out",
            )
        names = self.names or [_variant_name(v) for v in self.values]
        for i, name in enumerate(names):
            require(
                VARIANT_NAME.match(name) is not None,
                f"{where}.{'names' if self.names else 'values'}[{i}]",
                f"variant name {name!r} is not a plain folder name (letters, digits, _ + -, and dots inside): "
                "set `names`",
            )
        require(
            len(set(names)) == len(names),
            f"{where}.names" if self.names else f"{where}.values",
            f"variant names must be distinct, got {names}",
        )


def _variant_name(value: Any) -> str:
    """A variant's name from its value: late, 0.5, true, 2-4 (lists joined by -)."""
    if isinstance(value, (list, tuple)):
        return "-".join(_variant_name(v) for v in value)
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


@dataclass(frozen=True)
class DataParams:
    """How the training stages read the dataset file: whole splits in memory, or batch by batch.

    `auto` streams when the file is larger than `memory_fraction` of the memory available now
    (MemAvailable in /proc/meminfo); both modes give the same batches, so the same results.
    `workers: auto` starts DataLoader workers where the process has spare cores
    (g2d.training.data.resolve_workers); any number of workers gives the same batches.
    """

    loading: Literal["auto", "memory", "stream"] = "auto"
    workers: int | str = "auto"  # a count, or "auto" (validate() names both in its error, as a Literal could not)
    memory_fraction: float = 0.5

    def validate(self, where: str) -> None:
        require(
            self.workers == "auto" or (isinstance(self.workers, int) and self.workers >= 0),
            f"{where}.workers",
            f"{self.workers!r} is not allowed; give auto (workers where there are spare cores), "
            "0 (read in the training process) or a positive number of worker processes",
        )
        require(0 < self.memory_fraction <= 1, f"{where}.memory_fraction", "must be in (0, 1]")


@dataclass(frozen=True)
class AugmentParams:
    """Training-time augmentation of a dataset's frame-stack and image modalities: the reference's
    CREMA-D train transform (random resized crop, resized back to the stored size, then a horizontal
    flip). Only training rows are augmented; validation and test never are.

    `kind` says how the teachers see the augmented input: `views` (a seeded bank of `views` crops per
    training clip, drawn by the score stage, which scores the teachers once per view; each epoch a
    clip gets one of its views), `online` (a fresh crop every epoch and the teachers run on it every
    batch: exact, slow, needs `teacher_cache: false`), or `none`. Teachers train on fresh crops in
    both augmenting kinds, as the reference's do. `modalities` defaults to every frame-stack or image
    modality of the source (`IMAGE_MODALITIES`).
    """

    kind: Literal["none", "views", "online"] = "none"
    modalities: tuple[str, ...] | None = None
    views: int = 8
    scale: tuple[float, ...] = (0.08, 1.0)
    ratio: tuple[float, ...] = (3 / 4, 4 / 3)
    flip: bool = True

    @property
    def active(self) -> bool:
        return self.kind != "none"

    def crop_settings(self) -> dict[str, Any]:
        """What a fresh crop depends on (teacher training; the student in online mode)."""
        return {
            "modalities": list(self.modalities or ()),
            "scale": list(self.scale),
            "ratio": list(self.ratio),
            "flip": self.flip,
        }

    def validate(self, where: str) -> None:
        require(self.views >= 1, f"{where}.views", f"must be at least 1 view per training clip, got {self.views}")
        for name, (low, high), top in (
            ("scale", _pair(self.scale, f"{where}.scale"), 1.0),
            ("ratio", _pair(self.ratio, f"{where}.ratio"), float("inf")),
        ):
            require(
                0 < low <= high <= top,
                f"{where}.{name}",
                f"expected [low, high] with 0 < low <= high{' <= 1 (fractions of the frame area)' if top == 1 else ''}"
                f", got {[low, high]}",
            )
        if self.modalities is not None:
            require(
                len(self.modalities) > 0 or not self.active,
                f"{where}.modalities",
                f"an empty list augments nothing, so kind: {self.kind} has no effect; name at least one modality, "
                "leave the key out for all frame and image modalities, or set kind: none",
            )
            require(
                len(set(self.modalities)) == len(self.modalities),
                f"{where}.modalities",
                f"modalities must be distinct, got {list(self.modalities)}",
            )


def _pair(values: tuple[float, ...], key: str) -> tuple[float, float]:
    require(len(values) == 2, key, f"expected two numbers [low, high], got {list(values)}")
    return values[0], values[1]


@dataclass(frozen=True)
class DistributedParams:
    """Data-parallel training: `processes` per node, started by torchrun (one per GPU with CUDA, else CPU
    processes). Results agree with one process to float precision, not bit for bit, so no stage depends
    on it. Only methods whose per-batch statistics are reduced over the processes may use it."""

    processes: int = 1

    def validate(self, where: str) -> None:
        require(self.processes >= 1, f"{where}.processes", "must be 1 (one process) or more")


@dataclass(frozen=True)
class JobResources:
    """What one job of a stage asks a cluster scheduler for (Snakemake's `resources`; local runs ignore
    them): memory in MB, wall time in minutes, GPUs."""

    mem_mb: int = 4000
    runtime: int = 60
    gpus: int = 0

    def validate(self, where: str) -> None:
        require(self.mem_mb > 0, f"{where}.mem_mb", "must be a positive number of MB")
        require(self.runtime > 0, f"{where}.runtime", "must be a positive number of minutes")
        require(self.gpus >= 0, f"{where}.gpus", "must be 0 or more")


# The resources params.yaml documents (tests/test_params.py checks they agree); a key left out of
# `resources.stages` keeps its value here.
STAGE_RESOURCES: dict[str, dict[str, int]] = {
    "generate_demo": {"mem_mb": 2000, "runtime": 30, "gpus": 0},
    "generate_misme_demo": {"mem_mb": 2000, "runtime": 30, "gpus": 0},
    "generate_trimodal_demo": {"mem_mb": 2000, "runtime": 30, "gpus": 0},
    "preprocess": {"mem_mb": 8000, "runtime": 240, "gpus": 0},
    "train_teachers": {"mem_mb": 16000, "runtime": 720, "gpus": 1},
    "score": {"mem_mb": 16000, "runtime": 120, "gpus": 1},
    "train_student": {"mem_mb": 16000, "runtime": 720, "gpus": 1},
    "evaluate": {"mem_mb": 8000, "runtime": 60, "gpus": 1},
    "ablate": {"mem_mb": 16000, "runtime": 2880, "gpus": 1},
    "report": {"mem_mb": 4000, "runtime": 30, "gpus": 0},
}


@dataclass(frozen=True)
class ResourcesParams:
    """Cluster resources per stage (`stages`: the fields given replace STAGE_RESOURCES'), and per dataset
    where a dataset needs more (`datasets.<name>.<stage>`: the fields given replace the stage's)."""

    stages: dict[str, dict[str, int]] = field(default_factory=dict)
    datasets: dict[str, dict[str, dict[str, int]]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        given = self.stages
        merged = {stage: {**values, **given.get(stage, {})} for stage, values in STAGE_RESOURCES.items()}
        object.__setattr__(self, "stages", {**given, **merged})

    def job(self, stage: str, dataset: str | None = None) -> JobResources:
        """The resources of one job of `stage` (for `dataset`, if the stage runs per dataset)."""
        extra = self.datasets.get(dataset or "", {}).get(stage, {})
        return JobResources(**{**self.stages.get(stage, {}), **extra})

    def validate(self, where: str) -> None:
        from g2d import pipeline

        names = [s.name for s in pipeline.STAGES]
        tables = [(f"{where}.stages.{stage}", stage, values) for stage, values in self.stages.items()]
        for dataset, stages in self.datasets.items():
            tables += [(f"{where}.datasets.{dataset}.{stage}", stage, values) for stage, values in stages.items()]
        for key, stage, values in tables:
            require(stage in names, key, f"not a stage; stages: {', '.join(names)}")
            parse(JobResources, values, key)


@dataclass(frozen=True)
class DatasetParams:
    """One dataset to run: its raw source, where the raw files are, per-modality encoders (a name, or a
    mapping {name: ..., <the encoder's options>}, g2d.models.encoder_options), `student`:
    overrides of student params for this dataset only (dotted keys as an ablation's `over`, or nested
    mappings; e.g. {ogm_ge.alpha: 0.8}), applied by `Params.for_dataset`, and the training-time
    augmentation (`augment`, off unless asked for)."""

    source: str
    raw_dir: str
    encoders: dict[str, str | dict[str, Any]]
    preprocess: Any = None
    student: dict[str, Any] = field(default_factory=dict)
    augment: AugmentParams = field(default_factory=AugmentParams)
    modalities: tuple[str, ...] = field(default=(), metadata={"internal": True})  # the source's, in model order


@dataclass(frozen=True)
class Params:
    """Everything the pipeline can be told. Field docs live in params.yaml, and every default here is
    params.yaml's value (tests/test_params.py checks), so a preset that drops a key gets the documented one."""

    seeds: tuple[int, ...]
    datasets: dict[str, DatasetParams]
    methods: tuple[str, ...]
    tau1: int
    tau2: int
    tau3: int = 0
    alpha: float = 1.0
    beta: float = 1.0
    temperature: float = 1.0
    fusion: str = "late"
    modalities: Literal["all"] | tuple[str, ...] = "all"
    optimizer: Literal["sgd", "adam", "adamw"] = "sgd"
    init: Literal["reference", "torch"] = "reference"
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 1e-4
    scheduler: SchedulerParams = field(default_factory=SchedulerParams)
    batch_size: int = 16
    eval_batch_size: int = 256
    teacher: TeacherParams = field(default_factory=TeacherParams)
    smp: SMPParams = field(default_factory=SMPParams)
    teacher_cache: bool = True
    device: str = "auto"
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"
    data: DataParams = field(default_factory=DataParams)
    resources: ResourcesParams = field(default_factory=ResourcesParams)
    distributed: DistributedParams = field(default_factory=DistributedParams)
    ablations: dict[str, AblationParams] = field(default_factory=dict)
    extra_taus: tuple[int, ...] = field(default=(), metadata={"internal": True})  # tau4, tau5, ... if set
    # the registered methods' and fusions' sections, {section: options}: params.yaml's top-level keys of those names
    sections: dict[str, Any] = field(default_factory=dict, metadata={"internal": True})
    # the demo generators' sections, {generator: its Params} (g2d.datasets.GENERATORS: demo, misme_demo, ...)
    generators: dict[str, Any] = field(default_factory=dict, metadata={"internal": True})
    # the dataset these params are for (set by `for_dataset`): what `modalities` and `values: subsets` refer to
    dataset: str | None = field(default=None, metadata={"internal": True})

    def taus(self, k: int) -> tuple[int, ...]:
        """The SMP schedule (tau_1..tau_k) for a dataset of k modalities."""
        all_taus = (self.tau1, self.tau2, self.tau3, *self.extra_taus)
        if k > len(all_taus):
            raise ConfigError(f"tau{k}: missing; a dataset with {k} modalities needs tau1..tau{k}")
        return all_taus[:k]

    def section(self, name: str) -> Any:
        """The options in section `name` of a registered method or fusion (e.g. ogm_ge, film); its
        defaults if these params were built without it."""
        if name in self.sections:
            return self.sections[name]
        registered = registered_sections()
        require(name in registered, name, f"no method or fusion has this section; sections: {', '.join(registered)}")
        return registered[name]()

    def method_options(self, method: str) -> Any:
        """The options method `method` receives: its section's, or None if it has no knobs."""
        name = method_section(method)
        return None if name is None else self.section(name)

    def fusion_options(self, fusion: str) -> dict[str, Any]:
        """The knobs of fusion `fusion` as keyword arguments: its params.yaml section for fusions that
        have one (film, gated), else none."""
        name = fusion_section(fusion)
        return {} if name is None else dataclasses.asdict(self.section(name))

    def with_student_overrides(self, overrides: Mapping[str, Any]) -> Params:
        """These params with student keys set ({dotted key: value}), each type-checked and validated as
        params.yaml itself is: the one place ablation variants and per-dataset overrides are applied."""
        out = self
        for key, value in overrides.items():
            out = override(out, key, value)
        out.validate_knobs()
        return out

    def student_modalities(self, dataset: str) -> tuple[str, ...]:
        """The modalities a student of `dataset` uses, in the dataset's order: all of them, or the subset
        `modalities` names (two or more: one modality alone is what its teacher already is)."""
        available = self.datasets[dataset].modalities
        if self.modalities == "all":
            return available
        unknown = [m for m in self.modalities if m not in available]
        require(
            not unknown,
            "modalities",
            f"dataset {dataset} has no modality {unknown[0] if unknown else ''!r}; "
            f"its modalities: {', '.join(available)}",
        )
        require(len(set(self.modalities)) == len(self.modalities), "modalities", "names must be distinct")
        require(
            len(self.modalities) >= 2,
            "modalities",
            f"{list(self.modalities)} is one modality: a student of one modality is that modality's teacher "
            "(the teachers stage trains it); name two or more, or all",
        )
        return tuple(m for m in available if m in self.modalities)

    def variants(self, ablation: str) -> dict[str, dict[str, Any]]:
        """Variant name -> overrides of ablation `ablation`; `values: subsets` needs these params to be a
        dataset's (`for_dataset`)."""
        require(
            ablation in self.ablations,
            f"ablations.{ablation}",
            f"no such ablation in params; defined: {', '.join(self.ablations) or 'none'}",
        )
        return self.ablations[ablation].overrides(self.datasets[self.dataset].modalities if self.dataset else None)

    def variant(self, ablation: str, variant: str) -> Params:
        """These params with one ablation variant's overrides applied (on a dataset's params: after
        `for_dataset`, so the variant's keys win)."""
        variants = self.variants(ablation)
        require(
            variant in variants,
            f"ablations.{ablation}",
            f"unknown variant {variant!r}; its variants: {', '.join(variants)}",
        )
        return self.with_student_overrides(variants[variant])

    def for_dataset(self, name: str) -> Params:
        """The params a student of dataset `name` trains and is evaluated with: these, with
        `datasets.<name>.student` applied; errors name that key."""
        require(
            name in self.datasets,
            f"datasets.{name}",
            f"no such dataset in params; defined: {', '.join(self.datasets) or 'none'}",
        )
        where = f"datasets.{name}.student"
        try:
            out = dataclasses.replace(self, dataset=name).with_student_overrides(dotted(self.datasets[name].student))
            out.student_modalities(name)
        except ConfigError as exc:
            raise ConfigError(f"{where}.{exc}") from exc
        return out

    def check(self) -> None:
        """Everything that spans keys, once the params are assembled (`params_from_dict` calls it)."""
        for name in self.resources.datasets:
            require(
                name in self.datasets,
                f"resources.datasets.{name}",
                f"no such dataset in params; defined: {', '.join(self.datasets) or 'none'}",
            )
        self.validate_knobs()
        self.validate_dataset_overrides()
        self.validate_ablations()

    def validate_knobs(self) -> None:
        """Everything but the ablations section (a variant re-checks these after its overrides)."""
        require(len(self.seeds) > 0, "seeds", "give at least one seed, e.g. [0]")
        require(len(set(self.seeds)) == len(self.seeds), "seeds", "seeds must be distinct")
        for i, seed in enumerate(self.seeds):
            require(
                seed >= 0, f"seeds[{i}]", f"{seed} is negative; seeds are non-negative integers (file names use them)"
            )
        require(len(self.datasets) > 0, "datasets", "name at least one dataset to run")
        require(len(self.methods) > 0, "methods", f"name at least one of {', '.join(METHODS)}")
        for i, method in enumerate(self.methods):
            require(method in METHODS, f"methods[{i}]", f"unknown method {method!r}; choose from {', '.join(METHODS)}")
        for i, tau in enumerate((self.tau1, self.tau2, self.tau3, *self.extra_taus), start=1):
            require(tau >= 0, f"tau{i}", f"must be a non-negative number of epochs, got {tau}")
        require(self.tau1 + self.tau2 > 0, "tau1", "tau1 + tau2 must be positive: the student trains sum(tau) epochs")
        require(self.fusion in FUSIONS, "fusion", f"unknown fusion {self.fusion!r}; choose from {', '.join(FUSIONS)}")
        require(self.lr > 0, "lr", "must be positive")
        require(0 <= self.momentum < 1, "momentum", "must be in [0, 1)")
        require(self.weight_decay >= 0, "weight_decay", "must be non-negative")
        require(self.batch_size > 0, "batch_size", "must be positive")
        require(self.eval_batch_size > 0, "eval_batch_size", "must be positive")
        require(self.temperature > 0, "temperature", "must be positive")
        require(self.alpha >= 0, "alpha", "must be non-negative")
        require(self.beta >= 0, "beta", "must be non-negative")
        require(
            re.fullmatch(r"auto|cpu|cuda(:\d+)?", self.device) is not None,
            "device",
            f"{self.device!r} is not allowed; choose auto, cpu, cuda or cuda:N",
        )
        require(
            not (self.precision == "fp16" and self.device == "cpu"),
            "precision",
            "fp16 needs CUDA (its loss scaling, torch.amp.GradScaler, and fp16 kernels); on the CPU use bf16 or fp32",
        )
        for name, ds in self.datasets.items():
            key = f"datasets.{name}"
            require(
                re.fullmatch(r"[A-Za-z0-9_]+", name) is not None,
                key,
                "dataset names may use letters, digits and _ only (they become file names)",
            )
            for modality, enc in ds.encoders.items():
                encoder_options(enc, f"{key}.encoders.{modality}")
        self.validate_online_teachers()
        self.validate_data_parallel()
        self.validate_loss_scaling()

    def validate_loss_scaling(self) -> None:
        """fp16 scales the loss before backward; a method that takes gradients itself (torch.autograd.grad)
        would combine scaled gradients, so fp16 is only for the methods whose steps go through the scaler."""
        if self.precision != "fp16":
            return
        methods = {*self.methods, *(m for a in self.ablations.values() for m in a.methods)}
        unscaled = sorted(m for m in methods if not method_entry(m).loss_scaling)
        require(
            not unscaled,
            "precision",
            f"fp16 is not supported by {', '.join(unscaled)}, which computes per-loss gradients outside the "
            "loss scaler; use precision: bf16 (no loss scaling needed) or fp32",
        )

    def validate_data_parallel(self) -> None:
        """Several processes only for the methods verified to train the same as in one."""
        if self.distributed.processes == 1:
            return
        methods = {*self.methods, *(m for a in self.ablations.values() for m in a.methods)}
        unverified = sorted(m for m in methods if not method_entry(m).data_parallel)
        verified = ", ".join(name for name in METHODS if method_entry(name).data_parallel)
        require(
            not unverified,
            "distributed.processes",
            f"methods {', '.join(unverified)} read per-batch statistics that are not yet reduced over processes; "
            f"run them with distributed.processes: 1 (several processes work for {verified})",
        )

    def validate_online_teachers(self) -> None:
        """Online augmentation changes a clip every epoch, so no cache can hold its teachers' outputs:
        a method that distils from teachers must run them online (`teacher_cache: false`)."""
        online = [name for name, ds in self.datasets.items() if ds.augment.kind == "online"]
        methods = {*self.methods, *(m for a in self.ablations.values() for m in a.methods)}
        distilling = sorted(m for m in methods if method_entry(m).teachers)
        require(
            not (online and distilling and self.teacher_cache),
            "teacher_cache",
            f"must be false while datasets.{online[0] if online else ''}.augment.kind is online: the "
            f"methods {', '.join(distilling)} distil from the teachers' outputs on each epoch's fresh crops, "
            "which no cache holds; set teacher_cache: false, or augment.kind: views to keep the cache",
        )

    def validate_dataset_overrides(self) -> None:
        """Each dataset's `student` section names student keys only, and its params validate."""
        for name, ds in self.datasets.items():
            for key in dotted(ds.student):
                require_student_key(key, f"datasets.{name}.student.{key}")
            self.for_dataset(name)

    def validate_ablations(self) -> None:
        """Names are file names, `over` names student keys only, and every variant's params validate, on
        the base params and on every dataset's (its `student` overrides applied first)."""
        for name, ablation in self.ablations.items():
            require(
                re.fullmatch(r"[A-Za-z0-9_]+", name) is not None,
                f"ablations.{name}",
                "ablation names may use letters, digits and _ only (they become file and stage names)",
            )
            for i, key in enumerate(ablation.keys):
                require_student_key(
                    key, f"ablations.{name}.over" + (f"[{i}]" if not isinstance(ablation.over, str) else "")
                )
            if not ablation.per_dataset:
                for i, variant in enumerate(self.variants(name)):
                    try:
                        self.variant(name, variant)
                    except ConfigError as exc:
                        raise ConfigError(f"ablations.{name}.values[{i}]: {exc}") from exc
            for ds, spec in self.datasets.items():
                if not (spec.student or "modalities" in ablation.keys):
                    continue
                run = self.for_dataset(ds)
                for i, variant in enumerate(run.variants(name)):
                    try:
                        run.variant(name, variant).student_modalities(ds)
                    except ConfigError as exc:
                        on = f"datasets.{ds}.student" if spec.student else f"dataset {ds}"
                        raise ConfigError(f"ablations.{name}.values[{i}] on top of {on}: {exc}") from exc


def optimizer_warnings(params: Params) -> list[str]:
    """Settings that run but defeat their own purpose, one line each (`g2d check` prints them).

    Adam and AdamW divide each step by a running RMS of the gradient, so multiplying an encoder's
    gradients by a constant coefficient (OGM-GE, AGM, SMP's partial suppression) leaves the step
    almost unchanged, and a gradient that shrinks because another modality already fits the labels
    (the starvation these methods repair) is scaled back up. Checked for the base params, every
    dataset's student overrides and every ablation variant.
    """
    runs = [("", params, params.methods)]
    runs += [
        (f"datasets.{name}.student: ", params.for_dataset(name), params.methods)
        for name, ds in params.datasets.items()
        if ds.student
    ]
    for name, ablation in params.ablations.items():
        bases = [params.for_dataset(ds) for ds in params.datasets] if ablation.per_dataset else [params]
        runs += [
            (f"ablations.{name} variant {variant}: ", base.variant(name, variant), ablation.methods)
            for base in bases
            for variant in base.variants(name)
        ]
    out = []
    for where, p, methods in runs:
        if p.optimizer not in ("adam", "adamw"):
            continue
        hit = [m for m in methods if method_entry(m).scales_gradients]
        if p.smp.suppression == "partial":
            hit += [f"{m} (smp.suppression: partial)" for m in methods if method_entry(m).smp]
        if hit:
            out.append(
                f"{where}optimizer: {p.optimizer} with {', '.join(hit)}: Adam-family optimizers divide each "
                "step by the gradient's running RMS, so these gradient coefficients barely change the update "
                "and the imbalance they act on is largely hidden; use optimizer: sgd (the paper's)"
            )
    return out


def source_modalities(source: Any, preprocess: Any) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """A dataset's modalities and its frame or image modalities: fixed by the source (`MODALITIES`,
    `IMAGE_MODALITIES`), or named by its params for a source of any modalities (`modalities(params)`,
    `image_modalities(params)`, as `arrays`)."""
    if hasattr(source, "modalities"):
        return tuple(source.modalities(preprocess)), tuple(source.image_modalities(preprocess))
    return tuple(source.MODALITIES), tuple(getattr(source, "IMAGE_MODALITIES", ()))


def resolve_augment(augment: AugmentParams, source: Any, images: tuple[str, ...], where: str) -> AugmentParams:
    """`augment` with its modalities checked against the dataset's frame and image modalities (`images`)
    and, when left out, set to all of them."""
    if augment.modalities is None:
        require(
            bool(images) or not augment.active,
            f"{where}.kind",
            f"the {source.SOURCE} source has no frame or image modality to augment; set kind: none",
        )
        return dataclasses.replace(augment, modalities=images)
    for i, modality in enumerate(augment.modalities):
        require(
            modality in images,
            f"{where}.modalities[{i}]",
            f"{modality!r} is not a frame-stack or image modality of the {source.SOURCE} source; "
            f"choose from {', '.join(images) or 'none (it has none)'}",
        )
    return augment


def student_keys() -> tuple[str, ...]:
    """The top-level params a student run reads and an ablation or a dataset's `student` section may
    vary (g2d.pipeline's train_student)."""
    from g2d import pipeline

    return tuple(k for k in pipeline.stage("train_student").params if "{" not in k)


def require_student_key(key: str, where: str) -> None:
    """`key` (dotted) must be a student param or a key inside one; the error names `where`."""
    allowed = student_keys()
    require(
        key.split(".")[0] in allowed,
        where,
        f"{key!r} is not a student param (teachers and scores are shared by all students of a dataset); "
        f"choose from {', '.join(allowed)} or a key inside one of them",
    )


def dotted(overrides: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested override mappings as dotted keys: {ogm_ge: {alpha: 0.8}} -> {ogm_ge.alpha: 0.8}, so that a
    mapping sets the keys it names and leaves the rest of its section as params.yaml has them (no
    student param's value is itself a mapping)."""
    out: dict[str, Any] = {}
    for key, value in overrides.items():
        full = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, Mapping):
            out.update(dotted(value, full))
        else:
            out[full] = value
    return out


def override(section: T, key: str, value: Any, where: str = "") -> T:
    """`section` (at dotted path `where`) with dotted `key` set to `value`, type-checked and re-validated
    as params.yaml itself is; errors name the full key."""
    head, _, rest = key.partition(".")
    full = f"{where}.{head}" if where else head
    keys = settable(section)
    require(head in keys, full, f"unknown key; allowed keys here: {', '.join(sorted(keys))}")
    owner = section if isinstance(section, Params) and head in section.sections else None
    current = owner.section(head) if owner is not None else getattr(section, head)
    if rest:
        require(dataclasses.is_dataclass(current), full, f"has no keys inside it, so {key!r} cannot be set")
        new = override(current, rest, value, full)
    else:
        new = coerce(keys[head], value, full)
    if owner is not None:
        return dataclasses.replace(owner, sections={**owner.sections, head: new})  # type: ignore[return-value]
    out = dataclasses.replace(section, **{head: new})  # type: ignore[type-var]
    check = getattr(out, "validate", None)
    if callable(check):
        check(where)
    return out


def settable(section: Any) -> dict[str, Any]:
    """{key: type} of the keys an override may set in `section`: its fields but the internal ones and,
    in Params, the registered methods' and fusions' sections."""
    hints = get_type_hints(type(section))
    keys = {f.name: hints[f.name] for f in dataclasses.fields(section) if not f.metadata.get("internal")}
    if isinstance(section, Params):
        keys.update({name: type(options) for name, options in section.sections.items()})
    return keys


def deep_merge(base: Mapping[str, Any], overlay: Mapping[str, Any]) -> dict[str, Any]:
    """Merge `overlay` into a copy of `base`; mappings merge key by key, anything else replaces.

    A `null` in the overlay removes the key (how a preset drops, e.g., the demo dataset).
    """
    out = copy.deepcopy(dict(base))
    for key, value in overlay.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Read one YAML mapping, naming the file in any error."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: params file not found")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of keys at the top level")
    return data


def write_params(path: str | Path, data: Mapping[str, Any]) -> None:
    """Validate, then write a params mapping as YAML (atomically)."""
    from g2d.io.atomic import write_text

    params_from_dict(data)
    write_text(path, yaml.safe_dump(dict(data), sort_keys=False, default_flow_style=None))


def load_params(paths: Sequence[str | Path] = ("params.yaml",)) -> Params:
    """Load and validate params from one file or several overlaid in order."""
    merged: dict[str, Any] = {}
    for path in paths:
        merged = deep_merge(merged, read_yaml(path))
    return params_from_dict(merged)


def params_from_dict(data: Mapping[str, Any]) -> Params:
    """Validate a params mapping into `Params`; errors name the dotted key."""
    data = dict(data)
    for named in ("datasets", "ablations"):  # Snakemake merges overlays itself: honour `null` (drop it) there too
        if isinstance(data.get(named), Mapping):
            data[named] = {k: v for k, v in data[named].items() if v is not None}
    extra = sorted((int(m.group(1)), k) for k in data if (m := TAU_KEY.match(k)) and int(m.group(1)) > 3)
    extra_taus = []
    for expected, (n, key) in enumerate(extra, start=4):
        require(n == expected, f"tau{expected}", f"missing; {key} is set, so tau4..tau{n} are needed")
        value = data.pop(key)
        require(isinstance(value, int) and not isinstance(value, bool), key, f"expected an integer, got {value!r}")
        extra_taus.append(value)
    for key in ("tau1", "tau2"):
        require(key in data, key, "missing; the SMP schedule needs tau1 and tau2 (epochs)")
    registered = registered_sections()
    sections: dict[str, Any] = {
        name: parse(options, data.pop(name, None), name) for name, options in registered.items()
    }
    # a demo generator's section (demo, misme_demo, ...) is its module's Params; absent: that generator is off
    generators = {
        name: parse(get_generator(name).Params, data.pop(name), name)
        for name in GENERATORS
        if data.get(name) is not None
    }
    for name in GENERATORS:
        data.pop(name, None)
    params = parse(Params, data, "", also=(*registered, *GENERATORS))
    datasets = {}
    for name, ds in params.datasets.items():
        require(
            ds.source in SOURCES,
            f"datasets.{name}.source",
            f"unknown source {ds.source!r}; choose from {', '.join(sorted(SOURCES))}",
        )
        source = get_source(ds.source)
        pre = parse(source.Params, ds.preprocess, f"datasets.{name}.preprocess")
        names, images = source_modalities(source, pre)
        missing = [m for m in names if m not in ds.encoders]
        unknown = [m for m in ds.encoders if m not in names]
        require(not missing, f"datasets.{name}.encoders", f"no encoder for modalities {missing}")
        require(
            not unknown,
            f"datasets.{name}.encoders.{unknown[0] if unknown else ''}",
            f"the {ds.source} source has no such modality; its modalities: {', '.join(names)}",
        )
        datasets[name] = dataclasses.replace(
            ds,
            preprocess=pre,
            modalities=names,
            augment=resolve_augment(ds.augment, source, images, f"datasets.{name}.augment"),
        )
    params = dataclasses.replace(
        params, datasets=datasets, generators=generators, extra_taus=tuple(extra_taus), sections=sections
    )
    params.check()
    return params


def registered_sections() -> dict[str, type]:
    """{params.yaml section: options dataclass} of every registered method and fusion with knobs; a
    section name may not be a core key, nor name two different options classes."""
    out = method_sections()
    core = {f.name for f in dataclasses.fields(Params)}
    for name, options in fusion_sections().items():
        if out.setdefault(name, options) is not options:
            raise ConfigError(f"{name}: a method and a fusion both claim this params section; rename one")
    clash = sorted(core & set(out))
    if clash:
        raise ConfigError(f"{clash[0]}: a method's or fusion's section has the name of a core params key; rename it")
    return out
