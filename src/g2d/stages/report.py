"""Stage report: every run's test metrics, averaged over seeds, as tables, figures and curves.

Writes a markdown report with a Table-1-style comparison (teachers, then each method; fused and
per-modality rows; mean +- std over seeds), the weak modality's confidence ratio (Figure 6) and
feature alignment (Figure 5); `summary.json` for `dvc metrics show`; PNG figures; and per-epoch
curves for `dvc plots show` (train/val metric and the encoder's gradient coefficient: SMP's kappa,
OGM-GE's or AGM's). Each ablation in params gets a table (paper Tables 4-7) and a summary.json entry.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from g2d import pipeline
from g2d.config.params import Params
from g2d.io.atomic import read_json, write_json, write_text
from g2d.io.atomic_dir import atomic_dir
from g2d.plots import plot_modality_gap, plot_teacher_confidence, plot_test_bars, plot_training_curves

METRIC_ORDER = ("accuracy", "macro_f1", "mape", "r2", "rmse", "mae")  # the first is each dataset's main metric


def mean_std(values: Sequence[float | None]) -> dict[str, Any]:
    """Mean and std over seeds of the finite values; a value that is undefined (null in a run's JSON,
    e.g. R² of a constant target) is left out and counted, and none at all gives a null mean."""
    finite = [float(v) for v in values if v is not None and math.isfinite(v)]
    mean = statistics.fmean(finite) if finite else None
    std = statistics.stdev(finite) if len(finite) > 1 else (0.0 if finite else None)
    shown = [float(v) if v is not None and math.isfinite(v) else None for v in values]
    return {"mean": mean, "std": std, "values": shown, "undefined": len(values) - len(finite)}


def _read(path: Path) -> Any:
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: missing; the report needs every run named by datasets x seeds x methods "
            "in params.yaml: run the whole pipeline (snakemake or dvc repro)"
        )
    return read_json(path)


def _fmt(stat: dict[str, Any], scale: float) -> str:
    if stat["mean"] is None:
        return "n/a"
    text = f"{stat['mean'] * scale:.2f} ± {stat['std'] * scale:.2f}"
    return text + f" ({stat['undefined']} undefined)" if stat.get("undefined") else text


def _bar(stat: dict[str, Any]) -> tuple[float, float]:
    """A bar's height and error: an undefined mean draws no bar (NaN), never a made-up value."""
    return (math.nan, 0.0) if stat["mean"] is None else (stat["mean"], stat["std"])


def aggregate(runs: Sequence[dict[str, Any]], modalities: Sequence[str], metric_names: Sequence[str]) -> dict[str, Any]:
    """One run's evaluate output over seeds: each output's metrics, confidence ratio, alignment, best epoch."""
    entry: dict[str, Any] = {
        output: {k: mean_std([r["test"][output][k] for r in runs]) for k in metric_names}
        for output in ["fused", *modalities]
    }
    entry["probe"] = {m: {k: mean_std([r["probe"][m][k] for r in runs]) for k in metric_names} for m in modalities}
    for key in ("confidence_ratio", "feature_alignment"):
        entry[key] = {m: mean_std([r[key][m] for r in runs]) for m in modalities}
    entry["best_epoch"] = mean_std([r["best_epoch"] for r in runs])
    entry["modality_gap"] = mean_std([r["modality_gap"]["mean"] for r in runs])
    return entry


def best_record(history: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The epoch record of the checkpoint a run kept (chosen on validation): its last record names it."""
    best = history[-1]["best_epoch"]
    return next(r for r in history if r["epoch"] == best)


def branch_ratios(
    joint_log: Sequence[dict[str, Any]], teacher_logs: dict[str, Sequence[dict[str, Any]]], classification: bool
) -> dict[str, float]:
    """Per modality, joint's branch against its teacher on validation, each at its chosen checkpoint:
    accuracy over the teacher's accuracy, or (regression) the teacher's MSE over the branch's. Below 1:
    joint training left that modality's branch behind its teacher; the lowest is the starved one."""
    joint = best_record(joint_log)
    out = {}
    for m, log in teacher_logs.items():
        teacher = best_record(log)
        if classification:
            out[m] = joint[f"val_acc_{m}"] / teacher["val_acc"] if teacher["val_acc"] > 0 else 0.0
        else:
            out[m] = teacher["val_mse"] / joint[f"val_mse_{m}"] if joint[f"val_mse_{m}"] > 0 else 1.0
    return out


def weak_modality(
    params: Params, root: Path, dataset: str, modalities: Sequence[str], classification: bool, least_confident: str
) -> dict[str, Any]:
    """The modality the report's Figure-6 ratio is about: the one joint training starves (lowest ratio of
    joint's validation branch score to its teacher's, mean over seeds), or, when `joint` is not run, the
    one whose teacher is least confident on train (SMP's ranking). Validation only: never the test split."""
    if "joint" not in params.methods:
        return {
            "modality": least_confident,
            "ratios": None,
            "rule": "least confident teacher on the train split (joint is not among the methods, so the "
            "modality joint training starves is unknown)",
        }
    ratios: dict[str, list[float]] = {m: [] for m in modalities}
    for seed in params.seeds:
        teachers_dir = root / pipeline.fill(pipeline.TEACHERS, dataset=dataset, seed=seed)
        teacher_logs = {m: _read(teachers_dir / f"{m}.log.json") for m in modalities}
        joint_log = _read(root / pipeline.fill(pipeline.STUDENT_LOG, dataset=dataset, seed=seed, method="joint"))
        for m, r in branch_ratios(joint_log, teacher_logs, classification).items():
            ratios[m].append(r)
    stats = {m: mean_std(v) for m, v in ratios.items()}
    weak = min(modalities, key=lambda m: math.inf if stats[m]["mean"] is None else stats[m]["mean"])
    metric = "accuracy" if classification else "MSE"
    shown = ", ".join(f"{m} {_fmt(stats[m], 1.0).split(' ± ')[0]}" for m in modalities)
    return {
        "modality": weak,
        "ratios": stats,
        "rule": f"the modality joint training starves: lowest ratio of joint's validation {metric} on that "
        f"modality's branch to its teacher's ({shown})",
    }


def smp_priority(history: Sequence[dict[str, Any]], modalities: Sequence[str]) -> dict[int, dict[str, float]] | None:
    """Per SMP phase (1-based), the share of training samples whose batch prioritised each modality;
    None for methods without SMP."""
    if not history or f"prioritised_{modalities[0]}" not in history[0]:
        return None
    phases: dict[int, dict[str, list[float]]] = {}
    for r in history:
        per = phases.setdefault(int(r["smp_phase"]), {m: [] for m in modalities})
        for m in modalities:
            per[m].append(r[f"prioritised_{m}"])
    return {phase: {m: statistics.fmean(v) for m, v in per.items()} for phase, per in sorted(phases.items())}


def collect(params: Params, root: Path, dataset: str) -> dict[str, Any]:
    """Per-seed metrics of teachers, students and ablation runs of one dataset, aggregated over seeds."""
    runs = {
        s: {m: _read(root / pipeline.fill(pipeline.EVAL, dataset=dataset, seed=s, method=m)) for m in params.methods}
        for s in params.seeds
    }
    first = runs[params.seeds[0]][params.methods[0]]
    modalities = [m for m in params.datasets[dataset].modalities if m in first["test"]]  # the dataset's order
    metric_names = sorted(first["test"]["fused"], key=lambda k: (METRIC_ORDER + (k,)).index(k))
    weak = weak_modality(
        params, root, dataset, modalities, "accuracy" in metric_names, first["least_confident_teacher"]
    )
    out: dict[str, Any] = {
        "modalities": modalities,
        "metrics": metric_names,
        "weak_modality": weak["modality"],
        "weak_modality_rule": weak["rule"],
        "joint_branch_ratio": weak["ratios"],
        "teachers": {},
        "methods": {},
        "ablations": {},
    }
    for m in modalities:
        out["teachers"][m] = {
            k: mean_std([runs[s][params.methods[0]]["teacher"][m][k] for s in params.seeds]) for k in metric_names
        }
    for method in params.methods:
        out["methods"][method] = aggregate([runs[s][method] for s in params.seeds], modalities, metric_names)
        per_seed = [
            smp_priority(
                _read(root / pipeline.fill(pipeline.STUDENT_LOG, dataset=dataset, seed=s, method=method)), modalities
            )
            for s in params.seeds
        ]
        shares = [p for p in per_seed if p is not None]
        if shares:
            out["methods"][method]["smp_priority"] = {
                str(phase): {m: mean_std([p[phase][m] for p in shares]) for m in modalities} for phase in shares[0]
            }
    variant_eval = pipeline.in_variant(pipeline.EVAL)
    dataset_params = params.for_dataset(dataset)  # what the ablations' variants (values: subsets) are expanded on
    for name, ablation in params.ablations.items():
        variants: dict[str, Any] = {}
        for variant, overrides in dataset_params.variants(name).items():
            values = ", ".join(" + ".join(map(str, v)) if isinstance(v, list) else str(v) for v in overrides.values())
            label = values if len(overrides) == 1 else f"({values})"
            per_method = {}
            for method in ablation.methods:
                evals = [
                    _read(
                        root
                        / pipeline.fill(
                            variant_eval, dataset=dataset, seed=s, ablation=name, variant=variant, method=method
                        )
                    )
                    for s in params.seeds
                ]
                used = [k for k in evals[0]["test"] if k != "fused"]  # a subset of modalities (Table 2) or all
                per_method[method] = aggregate(evals, used, metric_names)
            variants[variant] = {
                "overrides": overrides,
                "label": f"{variant}: {label}" if ablation.names else label,
                "methods": per_method,
            }
        shown = {m for v in variants.values() for run in v["methods"].values() for m in run["probe"]}
        out["ablations"][name] = {
            "over": list(ablation.keys),
            "modalities": [m for m in params.datasets[dataset].modalities if m in shown],
            "variants": variants,
        }
    return out


def ablation_table(summary: dict[str, Any], name: str, metric: str, scale: float) -> str:
    """One ablation as the paper lays Tables 4-7 out: a row per method x variant, columns the fused
    output and each modality's encoder."""
    ablation = summary["ablations"][name]
    mods = ablation["modalities"]
    keys = ablation["over"]
    head = ["method", keys[0] if len(keys) == 1 else f"({', '.join(keys)})", "Multi (fused)", *mods]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    methods = list(next(iter(ablation["variants"].values()))["methods"])
    for method in methods:
        for v in ablation["variants"].values():
            run = v["methods"][method]
            cells = [_fmt(run[o][metric], scale) if o in run else "-" for o in ["fused", *mods]]
            lines.append("| " + " | ".join([method, v["label"], *cells]) + " |")
    return "\n".join(lines)


def gap_section(params: Params, root: Path, dataset: str, summary: dict[str, Any], figures: Path) -> list[str]:
    """Figure 4: the modality gap per method (mean ± std over seeds) and, for the first seed, each
    method's 2-D projection of its per-modality test features."""
    seed = params.seeds[0]
    lines = [
        "### Modality gap (Fig. 4)",
        "",
        "Distance between the centroids of each modality's L2-normalised student features on the test split "
        "(Liang et al.; mean over modality pairs; docs/evaluation.md). The paper reports a larger gap for G²D "
        "than for joint training.",
        "",
        "| method | modality gap |",
        "|---|---|",
    ]
    images: list[str] = []
    reasons: dict[str, list[str]] = {}
    for method, e in summary["methods"].items():
        lines.append(f"| {method} | {_fmt(e['modality_gap'], 1)} |")
        gap = _read(root / pipeline.fill(pipeline.GAP, dataset=dataset, seed=seed, method=method))
        if gap["points"]:
            png = f"{dataset}_{method}_modality_gap.png"
            plot_modality_gap(gap, figures / png, f"{dataset} / {method} (seed {seed})")
            images.append(f"![{method} modality gap](figures/{png})")
        if gap.get("undefined"):
            reasons.setdefault(gap["undefined"], []).append(method)
    notes = [f"Undefined for {', '.join(methods)}: {reason}." for reason, methods in reasons.items()]
    return [*lines, "", *([" ".join(notes), ""] if notes else []), *([" ".join(images), ""] if images else [])]


def coefficient(record: dict[str, Any], output: str) -> float:
    """The gradient coefficient of an output's encoder in one epoch: SMP's kappa, OGM-GE's or AGM's
    (whichever the method logs; 1.0 for the fused output and for methods that do not modulate)."""
    for prefix in ("kappa", "ogm_coeff", "agm_coeff"):
        if f"{prefix}_{output}" in record:
            return float(record[f"{prefix}_{output}"])
    return 1.0


def table(summary: dict[str, Any], metric: str, scale: float) -> str:
    """Table 1 layout: rows fused/modality outputs, columns teachers then methods."""
    mods = summary["modalities"]
    methods = list(summary["methods"])
    head = ["", *[f"T^{m}" for m in mods], *methods]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for output in [*mods, "fused"]:
        row = [output if output != "fused" else "Multi (fused)"]
        row += [_fmt(summary["teachers"][m][metric], scale) if m == output else "-" for m in mods]
        row += [_fmt(summary["methods"][meth][output][metric], scale) for meth in methods]
        lines.append("| " + " | ".join(row) + " |")
    for m in mods:
        row = [f"{m} encoder, linear probe", *("-" for _ in mods)]
        row += [_fmt(summary["methods"][meth]["probe"][m][metric], scale) for meth in methods]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


REGRESSION_LABELS = {"mape": "MAPE (%)", "r2": "R²", "rmse": "RMSE", "mae": "MAE"}


def regression_table(summary: dict[str, Any]) -> str:
    """The paper's Table 3 layout: a row per metric, columns each teacher, then each method's fused output."""
    mods = summary["modalities"]
    methods = list(summary["methods"])
    head = ["metric", *(f"T^{m} ({m} only)" for m in mods), *methods]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for metric in summary["metrics"]:
        row = [REGRESSION_LABELS.get(metric, metric)]
        row += [_fmt(summary["teachers"][m][metric], 1.0) for m in mods]
        row += [_fmt(summary["methods"][meth]["fused"][metric], 1.0) for meth in methods]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def priority_table(summary: dict[str, Any], taus: Sequence[int]) -> list[str]:
    """Markdown lines: per SMP method and phase, the share of training samples whose batch prioritised each
    modality (mean ± std over seeds); nothing when no method uses SMP."""
    mods = summary["modalities"]
    rows = []
    for method, e in summary["methods"].items():
        for phase, shares in e.get("smp_priority", {}).items():
            j = int(phase)
            first, last = sum(taus[: j - 1]) + 1, sum(taus[:j])
            kind = "all jointly" if j == len(taus) else f"rank-{j} modality alone"
            rows.append(
                f"| {method} | {j} ({kind}), epochs {first}-{last} | "
                + " | ".join(_fmt(shares[m], 100) for m in mods)
                + " |"
            )
    if not rows:
        return []
    return [
        "### SMP: share of training batches that prioritised each modality (%)",
        "",
        "| method | phase | " + " | ".join(mods) + " |",
        "|---|---|" + "---|" * len(mods),
        *rows,
        "",
    ]


def run(params: Params, root: Path, report_path: Path, summary_path: Path, figures_dir: Path, curves_dir: Path) -> None:
    sections = [
        "# g2d report",
        "",
        f"Seeds: {', '.join(map(str, params.seeds))}. Every figure is the test split, with the checkpoint "
        "chosen on validation; mean ± std over seeds.",
        "",
    ]
    summary: dict[str, Any] = {}
    with atomic_dir(figures_dir) as fig_tmp, atomic_dir(curves_dir) as curve_tmp:
        for dataset in params.datasets:
            s = collect(params, root, dataset)
            summary[dataset] = s
            scale = 100.0 if "accuracy" in s["metrics"] else 1.0
            unit = " (%)" if scale == 100.0 else ""
            k = len(s["modalities"])
            taus = params.taus(k)
            sections += [
                f"## {dataset}",
                "",
                f"Modalities: {', '.join(s['modalities'])}; SMP schedule tau = "
                f"{tuple(taus)}; weak modality: **{s['weak_modality']}**, chosen as "
                f"{s['weak_modality_rule']}.",
                "",
            ]
            if scale == 1.0:
                sections += [
                    "### Table 3 layout: teachers and fused students, test split",
                    "",
                    regression_table(s),
                    "",
                    "MAPE = mean |(y - ŷ) / y| x 100 and R² in the target's units (docs/evaluation.md); each "
                    "method's per-modality branches are in the tables below.",
                    "",
                ]
            for metric in s["metrics"]:
                sections += [
                    f"### Test {metric}{unit if metric in ('accuracy', 'macro_f1') else ''}",
                    "",
                    table(s, metric, scale if metric in ("accuracy", "macro_f1") else 1.0),
                    "",
                ]
            sections += [
                "Per-modality rows are each branch's own output (the paper's Audio/Video rows). Under late "
                "fusion the training loss does not fix how the branches' heads share class offsets, so a "
                "branch's output can be wrong where the fused one is right; the *linear probe* rows fit a "
                "linear classifier on the train split's features of that encoder (L2 weight chosen on "
                "validation) and measure the encoder alone.",
                "",
            ]
            weak = s["weak_modality"]
            sections += [
                "### Modality imbalance",
                "",
                f"| method | confidence ratio of {weak}, the weak modality (Fig. 6) | "
                + " | ".join(f"feature alignment {m} (Fig. 5)" for m in s["modalities"])
                + " |",
                "|---|---|" + "---|" * k,
            ]
            for method, e in s["methods"].items():
                sections.append(
                    f"| {method} | {_fmt(e['confidence_ratio'][weak], 1)} | "
                    + " | ".join(_fmt(e["feature_alignment"][m], 1) for m in s["modalities"])
                    + " |"
                )
            sections.append("")
            sections += gap_section(params, root, dataset, s, fig_tmp)
            sections += priority_table(s, taus)
            main_metric = s["metrics"][0]
            main_scale = scale if main_metric in ("accuracy", "macro_f1") else 1.0
            for name in s["ablations"]:
                sections += [
                    f"### Ablation {name}: test {main_metric}{unit if main_scale != 1.0 else ''}",
                    "",
                    ablation_table(s, name, main_metric, main_scale),
                    "",
                ]
            bars = {f"T^{m}": {m: _bar(t[main_metric])} for m, t in s["teachers"].items()}
            for method, e in s["methods"].items():
                bars[method] = {o: _bar(e[o][main_metric]) for o in ["fused", *s["modalities"]]}
            bar_png = f"{dataset}_test_{main_metric}.png"
            plot_test_bars(bars, fig_tmp / bar_png, f"{dataset}: test {main_metric}", main_metric)
            sections += [f"![test {main_metric}](figures/{bar_png})", ""]
            seed = params.seeds[0]
            teacher_logs = {
                m: _read(root / pipeline.fill(pipeline.TEACHERS, dataset=dataset, seed=seed) / f"{m}.log.json")
                for m in s["modalities"]
            }
            conf_png = f"{dataset}_teacher_confidence.png"
            plot_teacher_confidence(teacher_logs, fig_tmp / conf_png, f"{dataset}: teacher confidence (seed {seed})")
            sections += [f"![teacher confidence](figures/{conf_png})", ""]
            metric = "acc" if scale == 100.0 else "mse"
            for method in params.methods:
                history = _read(root / pipeline.fill(pipeline.STUDENT_LOG, dataset=dataset, seed=seed, method=method))
                png = f"{dataset}_{method}_curves.png"
                plot_training_curves(
                    history, s["modalities"], taus, fig_tmp / png, f"{dataset} / {method} (seed {seed})", metric
                )
                sections += [f"![{method} curves](figures/{png})", ""]
                for output in ["fused", *s["modalities"]]:
                    suffix = "" if output == "fused" else f"_{output}"
                    records = [
                        {
                            "epoch": r["epoch"],
                            "train": r[f"train_{metric}{suffix}"],
                            "val": r[f"val_{metric}{suffix}"],
                            "coeff": coefficient(r, output),
                        }
                        for r in history
                    ]
                    write_json(curve_tmp / dataset / method / f"{output}_{metric}.json", records)
    write_json(summary_path, summary)
    write_text(report_path, "\n".join(sections) + "\n")
