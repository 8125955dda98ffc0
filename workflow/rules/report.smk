# Everything compiled into reports/: markdown tables, PNG figures, dvc-plots curves, summary.json. The
# tables, summary and figures are marked for Snakemake's HTML report (snakemake --report report.html).


rule report:
    input:
        stage_inputs("report"),
    output:
        *stage_outputs(
            "report",
            reported={
                pipeline.REPORT: dict(caption="../report/tables.rst", category="Report", labels={"file": "tables"}),
                pipeline.SUMMARY: dict(caption="../report/summary.rst", category="Report", labels={"file": "summary"}),
                pipeline.FIGURES: dict(
                    patterns=["{name}.png"],
                    caption="../report/figures.rst",
                    category="Figures",
                    labels={"figure": "{name}"},
                ),
            },
        ),
    params:
        p=stage_params("report"),
    log:
        stage_log("report"),
    resources:
        **stage_resources("report"),
    conda:
        ENV
    shell:
        stage_shell("report")
