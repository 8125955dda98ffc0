"""Three-modality benchmark: teachers, joint training and G2D on the synthetic three-modality demo,
every modality combination (the paper's Table 2 layout) and the modality gap (Figure 4).

Runs the real DAG (Snakemake with config/presets/trimodal-demo.yaml) from this checkout: the demo's
text, audio and vision sequences are generated in convert-pickle's layout and read by the `arrays`
source, then every seed trains three teachers, joint and G2D with three SMP phases, and both methods
on each subset of two or more modalities, each checkpoint chosen on validation. Prints test accuracy
of each teacher and each student's fused output, branches and linear probes (mean ± std over seeds),
the modality gap per method, and the subsets table; writes the same to docs/results/trimodal-demo.md.
UR-Funny's own figures (the paper's Table 2) are not comparable: the data here is synthetic.

    python bench/trimodal.py                 # the preset as is: 3 seeds
    python bench/trimodal.py --seeds 0       # a quicker look
    python bench/trimodal.py --no-run        # only print (and write) the tables of the last run
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
PRESET = ROOT / "config/presets/trimodal-demo.yaml"
DATASET = "trimodal"


def table(summary: dict[str, Any]) -> str:
    """Teachers and students (branches and probes as multiples of their teacher), the gap, Table 2."""
    from quality import fmt, student_rows

    from g2d.stages.report import ablation_table

    s = summary[DATASET]
    mods = s["modalities"]
    # summary.json keeps keys sorted: joint before G2D, and the subsets smallest first in the dataset's order
    s["methods"] = dict(sorted(s["methods"].items(), key=lambda kv: (kv[0] != "joint", kv[0] != "g2d", kv[0])))
    for ablation in s.get("ablations", {}).values():
        ablation["variants"] = dict(
            sorted(
                ablation["variants"].items(),
                key=lambda kv: (len(kv[0].split("-")), [mods.index(m) for m in kv[0].split("-") if m in mods]),
            )
        )
        for variant in ablation["variants"].values():
            variant["methods"] = dict(sorted(variant["methods"].items(), key=lambda kv: kv[0] != "joint"))
    n_seeds = len(next(iter(s["teachers"].values()))["accuracy"]["values"])
    lines = [
        f"Synthetic three-modality demo (text dominant), test accuracy (%), mean ± std over {n_seeds} seed(s), "
        "checkpoints chosen on validation.",
        "",
        f"Weak modality: **{s['weak_modality']}**, {s['weak_modality_rule']}.",
        "",
        "| model | output | ours | x teacher | paper |",
        "|---|---|---|---|---|",
    ]
    for m in mods:
        lines.append(f"| teacher {m} | {m} | {fmt(s['teachers'][m]['accuracy'])} | 1.00x | - |")
    for method, e in s["methods"].items():
        lines += student_rows(method, e, mods, s["teachers"], {})
    lines += ["", "Modality gap (Figure 4: distance between normalised centroids, mean over pairs):", ""]
    lines += ["| method | modality gap |", "|---|---|"]
    for method, e in s["methods"].items():
        gap = e["modality_gap"]
        lines.append(f"| {method} | {gap['mean']:.3f} ± {gap['std']:.3f} |" if gap["mean"] is not None else "| - |")
    for name in s.get("ablations", {}):
        lines += [
            "",
            f"Ablation {name} (Table 2 layout), test accuracy (%):",
            "",
            ablation_table(s, name, "accuracy", 100.0),
        ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from common import pipeline_main

    return pipeline_main(__doc__ or "", PRESET, DATASET, "trimodal-demo", table, argv)


if __name__ == "__main__":
    sys.exit(main())
