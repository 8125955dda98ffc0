# Everything compiled into reports/: markdown tables, PNG figures, dvc-plots curves, summary.json.


rule report:
    input:
        stage_inputs("report"),
    output:
        *stage_outputs("report"),
    params:
        p=stage_params("report"),
    log:
        stage_log("report"),
    conda:
        ENV
    shell:
        stage_shell("report")
