# Raw data -> HDF5: the demo generators (CREMA-D, MIS-ME and converted UR-Funny/IEMOCAP layouts) and one preprocessing job per dataset.


rule generate_demo:
    input:
        stage_inputs("generate_demo"),
    output:
        *stage_outputs("generate_demo"),
    params:
        p=stage_params("generate_demo"),
    log:
        stage_log("generate_demo"),
    resources:
        **stage_resources("generate_demo"),
    conda:
        ENV
    shell:
        stage_shell("generate_demo")


rule generate_misme_demo:
    input:
        stage_inputs("generate_misme_demo"),
    output:
        *stage_outputs("generate_misme_demo"),
    params:
        p=stage_params("generate_misme_demo"),
    log:
        stage_log("generate_misme_demo"),
    resources:
        **stage_resources("generate_misme_demo"),
    conda:
        ENV
    shell:
        stage_shell("generate_misme_demo")


rule generate_trimodal_demo:
    input:
        stage_inputs("generate_trimodal_demo"),
    output:
        *stage_outputs("generate_trimodal_demo"),
    params:
        p=stage_params("generate_trimodal_demo"),
    log:
        stage_log("generate_trimodal_demo"),
    resources:
        **stage_resources("generate_trimodal_demo"),
    conda:
        ENV
    shell:
        stage_shell("generate_trimodal_demo")


rule preprocess:
    input:
        stage_inputs("preprocess"),
    output:
        *stage_outputs("preprocess"),
    params:
        p=stage_params("preprocess"),
    log:
        stage_log("preprocess"),
    resources:
        **stage_resources("preprocess"),
    threads: lambda w: PARAMS.datasets[w.dataset].preprocess.workers
    conda:
        ENV
    shell:
        stage_shell("preprocess", "--workers {threads}")
