# Everything compiled into reports/: markdown tables, PNG figures, dvc-plots curves, summary.json.

REPORT_FILES = [pipeline.REPORT, pipeline.SUMMARY]


rule report:
    input:
        expand(pipeline.EVAL, dataset=DATASETS, seed=SEEDS, method=METHODS),
        expand(pipeline.STUDENT_LOG, dataset=DATASETS, seed=SEEDS, method=METHODS),
        expand(pipeline.TEACHERS, dataset=DATASETS, seed=SEEDS),
        expand(pipeline.ABLATION, dataset=DATASETS, seed=SEEDS, ablation=ABLATIONS),
    output:
        pipeline.REPORT,
        pipeline.SUMMARY,
        directory(pipeline.FIGURES),
        directory(pipeline.CURVES),
    params:
        p=stage_params("report"),
    conda:
        ENV
    shell:
        "{G2D} report"
