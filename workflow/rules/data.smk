# Raw data -> HDF5: the demo generator and one preprocessing job per dataset.


rule generate_demo:
    output:
        directory(pipeline.RAW_DEMO),
    params:
        p=stage_params("generate_demo"),
    conda:
        ENV
    shell:
        "{G2D} generate-demo --out {output}"


rule preprocess:
    input:
        lambda w: PARAMS.datasets[w.dataset].raw_dir,
    output:
        pipeline.PROCESSED,
        pipeline.PREPROCESS_REPORT,
    params:
        p=stage_params("preprocess"),
    threads: lambda w: PARAMS.datasets[w.dataset].preprocess.workers
    conda:
        ENV
    shell:
        "{G2D} preprocess --dataset {wildcards.dataset} --workers {threads}"
