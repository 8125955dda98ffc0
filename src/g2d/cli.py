"""The `g2d` command line: one subcommand per DAG stage, plus `check`, `preset` and `dvc-yaml`.

Snakemake's rules and dvc.yaml's stages call exactly these commands. Every command but `dvc-yaml`
takes `--params FILE` (repeatable: later files overlay earlier ones; default params.yaml).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from g2d import pipeline
from g2d.config.params import Params, load_params
from g2d.config.schema import ConfigError
from g2d.datasets import GENERATORS
from g2d.errors import G2DError, describe_os_error
from g2d.io.project_lock import project_lock
from g2d.rules import check_config_file

VARIANT_FILES = (
    pipeline.STUDENT,
    pipeline.STUDENT_LOG,
    pipeline.EVAL,
    pipeline.GAP,
    pipeline.RESUME,
)  # per-variant copies


def _path(template: str, args: argparse.Namespace, root: Path | None = None) -> Path:
    """A stage file's path for this command's dataset/seed/method (see g2d.pipeline); with --ablation,
    a student file of that variant; with `root`, variant files go under `root` instead of their
    ablation's folder (the temporary folder that `ablate` swaps into place)."""
    values = {
        k: getattr(args, k)
        for k in ("dataset", "seed", "method", "ablation", "variant")
        if getattr(args, k, None) is not None
    }
    if "ablation" in values and template in VARIANT_FILES:
        template = pipeline.in_variant(template)
    path = Path(pipeline.fill(template, **values))
    if root is not None:
        path = root / path.relative_to(pipeline.fill(pipeline.ABLATION, **values))
    return path


def _run_params(params: Params, args: argparse.Namespace) -> Params:
    """The params of a student run (train-student, evaluate, and through them ablate): the dataset's
    (`datasets.<name>.student` applied), then an ablation variant's overrides on top (--ablation with
    --variant)."""
    if (args.ablation is None) != (args.variant is None):
        raise ConfigError("--ablation and --variant go together: name both for a variant run, or neither")
    run = params.for_dataset(args.dataset)
    return run if args.ablation is None else run.variant(args.ablation, args.variant)


def cmd_generate(params: Params, args: argparse.Namespace) -> None:
    """`g2d generate-<name>`: demo generator <name> (g2d.datasets.GENERATORS) writes its raw files."""
    from g2d.stages import generate

    name = args.command.removeprefix("generate-").replace("-", "_")
    summary = generate.run(params, name, Path(args.out), args.force)
    print(f"{name} dataset written to {args.out}: {summary}")


def cmd_preprocess(params: Params, args: argparse.Namespace) -> None:
    from g2d.stages import preprocess

    preprocess.run(
        params, args.dataset, _path(pipeline.PROCESSED, args), _path(pipeline.PREPROCESS_REPORT, args), args.workers
    )


def cmd_train_teachers(params: Params, args: argparse.Namespace) -> None:
    from g2d.stages import train_teachers

    train_teachers.run(
        params,
        args.dataset,
        args.seed,
        _path(pipeline.PROCESSED, args),
        _path(pipeline.TEACHERS, args),
        _path(pipeline.RESUME, args),
    )


def cmd_score(params: Params, args: argparse.Namespace) -> None:
    from g2d.stages import score

    score.run(
        params,
        _path(pipeline.PROCESSED, args),
        _path(pipeline.TEACHERS, args),
        _path(pipeline.SCORES, args),
        _path(pipeline.TEACHER_METRICS, args),
        _path(pipeline.TEACHER_PLOT, args),
        augment=params.datasets[args.dataset].augment,
        seed=args.seed,
    )


def cmd_train_student(params: Params, args: argparse.Namespace, root: Path | None = None) -> None:
    from g2d.stages import train_student

    train_student.run(
        _run_params(params, args),
        args.dataset,
        args.method,
        args.seed,
        _path(pipeline.PROCESSED, args),
        _path(pipeline.SCORES, args),
        _path(pipeline.TEACHERS, args),
        _path(pipeline.STUDENT, args, root),
        _path(pipeline.STUDENT_LOG, args, root),
        _path(pipeline.RESUME, args),
    )


def cmd_evaluate(params: Params, args: argparse.Namespace, root: Path | None = None) -> None:
    from g2d.stages import evaluate

    result = evaluate.run(
        _run_params(params, args),
        _path(pipeline.PROCESSED, args),
        _path(pipeline.SCORES, args),
        _path(pipeline.STUDENT, args, root),
        _path(pipeline.EVAL, args, root),
        _path(pipeline.GAP, args, root),
    )
    fused = result["test"]["fused"]
    name = "/".join(str(getattr(args, k)) for k in ("ablation", "variant") if getattr(args, k) is not None)
    print(
        f"{args.dataset}/seed{args.seed}/{name + '/' if name else ''}{args.method}: test "
        + ", ".join(f"{k}={v:.4f}" for k, v in fused.items())
    )


def cmd_ablate(params: Params, args: argparse.Namespace) -> None:
    """Every variant x method of one ablation, trained and evaluated like train-student + evaluate."""
    from g2d.io.atomic_dir import atomic_dir

    if args.ablation not in params.ablations:
        raise ConfigError(
            f"--ablation: {args.ablation!r} is not in params' ablations "
            f"({', '.join(params.ablations) or 'none defined'})"
        )
    ablation = params.ablations[args.ablation]
    with atomic_dir(_path(pipeline.ABLATION, args)) as tmp:
        for variant in params.for_dataset(args.dataset).variants(args.ablation):
            for method in ablation.methods:
                run = argparse.Namespace(**{**vars(args), "variant": variant, "method": method})
                cmd_train_student(params, run, tmp)
                cmd_evaluate(params, run, tmp)


def cmd_report(params: Params, args: argparse.Namespace) -> None:
    from g2d.stages import report

    report.run(
        params, Path("."), Path(pipeline.REPORT), Path(pipeline.SUMMARY), Path(pipeline.FIGURES), Path(pipeline.CURVES)
    )
    print(f"report written to {pipeline.REPORT}")


def cmd_preset(params: Params, args: argparse.Namespace) -> None:
    from g2d.config.params import deep_merge, read_yaml, write_params

    target = (args.global_params + (args.params or []) or ["params.yaml"])[0]
    merged = deep_merge(read_yaml(target), read_yaml(args.preset))
    write_params(target, merged)
    print(f"{target}: {args.preset} merged in (comments are not kept; `git diff {target}` shows the change)")


def cmd_check(params: Params, args: argparse.Namespace) -> None:
    from g2d.config.params import optimizer_warnings

    for line in optimizer_warnings(params):
        print(f"g2d check: warning: {line}", file=sys.stderr)
    print(
        f"params OK: datasets {', '.join(params.datasets)}; methods {', '.join(params.methods)}; "
        f"seeds {', '.join(map(str, params.seeds))}; ablations "
        + (
            "; ".join(
                f"{name} ({'every subset of 2+ modalities' if a.per_dataset else ', '.join(a.overrides())} "
                f"x {', '.join(a.methods)})"
                for name, a in params.ablations.items()
            )
            or "none"
        )
    )


COMMANDS: dict[str, tuple[Callable[[Params, argparse.Namespace], None], str, tuple[str, ...]]] = {
    **{
        f"generate-{name.replace('_', '-')}": (cmd_generate, f"write {what}", ("out",))
        for name, (_, what) in GENERATORS.items()
    },
    "preprocess": (cmd_preprocess, "raw files -> HDF5 for one dataset", ("dataset", "workers")),
    "train-teachers": (cmd_train_teachers, "train one unimodal teacher per modality", ("dataset", "seed")),
    "score": (cmd_score, "cache teacher features, logits and confidence", ("dataset", "seed")),
    "train-student": (cmd_train_student, "train the multimodal student with one method", ("dataset", "seed", "method")),
    "evaluate": (cmd_evaluate, "test metrics of a trained student", ("dataset", "seed", "method")),
    "ablate": (
        cmd_ablate,
        "train and evaluate every variant x method of one ablation",
        ("dataset", "seed", "ablation"),
    ),
    "report": (cmd_report, "tables, figures and curves over every run", ()),
    "check": (cmd_check, "validate params and exit", ()),
    "preset": (cmd_preset, "merge a preset file (e.g. config/presets/paper.yaml) into params.yaml", ("preset",)),
}


def cmd_dvc_yaml(args: argparse.Namespace) -> int:
    """Write dvc.yaml from g2d.pipeline (atomically), or with --check say whether it is up to date."""
    from g2d import dvc_yaml
    from g2d.io.atomic import write_text

    out = Path(args.out)
    if args.check:
        changes = dvc_yaml.diff(out)
        if changes:
            print(f"{out}: out of date with src/g2d/pipeline.py; run `{dvc_yaml.COMMAND}`\n{changes}", file=sys.stderr)
            return 1
        print(f"{out}: up to date")
        return 0
    write_text(out, dvc_yaml.render())
    print(f"{out} written from src/g2d/pipeline.py")
    return 0


def cmd_convert_pickle(args: argparse.Namespace) -> int:
    """Unpickle a feature file once, explicitly, into the arrays source's .npz files."""
    from g2d.datasets import convert_pickle

    source, out = Path(args.file), Path(args.out)
    pairs = dict(item.split("=", 1) if "=" in item else (item, item) for item in args.modality)
    print(
        f"g2d convert-pickle: unpickling {source}: this runs code from the file; use only a file from a source "
        "you trust. The pipeline never unpickles: it reads the .npz files written here.",
        file=sys.stderr,
    )
    written = convert_pickle.convert(convert_pickle.unpickle(source), source, out, pairs, args.labels, args.ids)
    for split, shapes in written.items():
        print(f"{out / f'{split}.npz'}: " + ", ".join(f"{k} {v}" for k, v in shapes.items()))
    print(f"use it with source: arrays, raw_dir: {out}, modalities: {list(pairs)} (docs/data.md)")
    return 0


# Commands about the project's files rather than a run: they read no params.
TOOLS: dict[str, tuple[Callable[[argparse.Namespace], int], str]] = {
    "dvc-yaml": (cmd_dvc_yaml, "write dvc.yaml from the stages declared in src/g2d/pipeline.py"),
    "convert-pickle": (
        cmd_convert_pickle,
        "unpickle a feature-sequence file (UR-Funny, IEMOCAP) once into .npz files for the arrays source",
    ),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="g2d", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--debug",
        action="store_true",
        help="show the traceback of an expected error too (bad params, bad input, full disk)",
    )
    parser.add_argument(
        "--params",
        dest="global_params",
        action="append",
        default=[],
        metavar="FILE",
        help="params file before the command (same as after it)",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (_, help_text, options) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument(
            "--params",
            action="append",
            default=None,
            metavar="FILE",
            help="params file; repeat to overlay (default: params.yaml)",
        )
        p.add_argument("--threads", type=int, default=None, help="CPU threads for torch (default: torch's choice)")
        if "dataset" in options:
            p.add_argument("--dataset", required=True, help="a key of `datasets` in params.yaml")
        if "seed" in options:
            p.add_argument("--seed", required=True, type=int, help="one of `seeds` in params.yaml")
        if "method" in options:
            p.add_argument("--method", required=True, help="one of `methods` in params.yaml")
            p.add_argument("--ablation", default=None, help="run a variant of this ablation (with --variant)")
            p.add_argument("--variant", default=None, help="the variant of --ablation whose overrides apply")
        if "ablation" in options:
            p.add_argument("--ablation", required=True, help="a key of `ablations` in params.yaml")
        if "workers" in options:
            p.add_argument("--workers", type=int, default=None, help="worker processes (default: from params)")
        if "preset" in options:
            p.add_argument("preset", help="the preset YAML file to merge in")
        if "out" in options:
            out = pipeline.stage(name.replace("-", "_")).outs[0]
            p.add_argument("--out", default=out, help=f"output folder (default: {out})")
            p.add_argument(
                "--force",
                action="store_true",
                help="replace --out even if it holds files that are not an earlier demo's",
            )
    conv = sub.add_parser("convert-pickle", help=TOOLS["convert-pickle"][1], description=TOOLS["convert-pickle"][1])
    conv.add_argument("file", help="the pickle to convert (it is unpickled: trust its source)")
    conv.add_argument("--out", required=True, help="folder for train.npz, val.npz, test.npz")
    conv.add_argument(
        "--modality",
        action="append",
        required=True,
        metavar="NAME[=KEY]",
        help="a modality to keep, renamed from the pickle's KEY if given (repeat: --modality visual=vision)",
    )
    conv.add_argument("--labels", default="labels", help="the key of the labels (default: labels)")
    conv.add_argument("--ids", default="id", help="the key of the sample ids, if any (default: id)")
    dvc = sub.add_parser("dvc-yaml", help=TOOLS["dvc-yaml"][1], description=TOOLS["dvc-yaml"][1])
    dvc.add_argument("--out", default="dvc.yaml", help="the file to write (default: dvc.yaml)")
    dvc.add_argument("--check", action="store_true", help="write nothing; exit 1 and show the diff if it differs")
    return parser


NOT_STAGES = ("check", "preset")  # commands that write no pipeline output, so take no project lock


def _job_name(args: argparse.Namespace) -> str:
    """The command and its targets, as the project lock shows them (`train-student demo 0 g2d`)."""
    parts = [str(getattr(args, k)) for k in ("dataset", "seed", "method", "ablation") if getattr(args, k, None)]
    return " ".join([args.command, *parts])


DATA_PARALLEL = ("train-teachers", "train-student", "ablate")  # the commands `distributed.processes` spreads


def data_parallel(processes: int, argv: Sequence[str] | None) -> int:
    """Run this command again as `processes` processes under torchrun (or, inside them, as one of them)."""
    from g2d.training import distributed

    if distributed.launched():
        distributed.setup()
        return -1  # the caller runs the command as this process's share
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={processes}"]
    command += ["--module", "g2d.cli", *(sys.argv[1:] if argv is None else argv)]
    print(f"g2d: {processes} processes: {' '.join(command)}", file=sys.stderr)
    return subprocess.run(command).returncode


def check_dataset_file(params: Params, args: argparse.Namespace) -> None:
    """A stage that reads a dataset file first checks that it was made with today's preprocessing params."""
    from g2d.io.dataset_file import check_preprocessing

    if args.command == "preprocess" or getattr(args, "dataset", None) is None:
        return
    path = _path(pipeline.PROCESSED, args)
    if path.is_file():  # a missing file is the stage's own error, which names the stage to run
        ds = params.datasets[args.dataset]
        check_preprocessing(path, args.dataset, ds.source, ds.preprocess)


def check_targets(params: Params, args: argparse.Namespace) -> None:
    """--dataset, --method and --seed name what params define, before any file is opened."""
    dataset = getattr(args, "dataset", None)
    if dataset is not None and dataset not in params.datasets:
        raise ConfigError(
            f"--dataset: {dataset!r} is not a dataset of params; defined: {', '.join(params.datasets) or 'none'}"
        )
    method = getattr(args, "method", None)
    if method is not None:
        from g2d.methods import METHODS

        if method not in METHODS:
            raise ConfigError(f"--method: unknown method {method!r}; choose from {', '.join(METHODS)}")
    seed = getattr(args, "seed", None)
    if seed is not None and seed < 0:
        raise ConfigError(f"--seed: {seed} is negative; seeds are non-negative integers")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command in TOOLS:
            return TOOLS[args.command][0](args)
        files = args.global_params + (args.params or [])
        for file in files:
            check_config_file(file)
        params = load_params(files or ["params.yaml"])
        check_targets(params, args)
        if args.threads:
            import torch

            torch.set_num_threads(args.threads)
        if args.command in NOT_STAGES:
            COMMANDS[args.command][0](params, args)
        else:
            with project_lock(Path("."), _job_name(args)):
                check_dataset_file(params, args)
                if args.command in DATA_PARALLEL and params.distributed.processes > 1:
                    code = data_parallel(params.distributed.processes, argv)
                    if code >= 0:
                        return 2 if code else 0
                COMMANDS[args.command][0](params, args)
    except (G2DError, OSError) as exc:
        if args.debug:
            raise
        message = describe_os_error(exc) if isinstance(exc, OSError) else str(exc)
        print(f"g2d {args.command}: error: {message}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
