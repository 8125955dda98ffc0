# The multimodal student, one job per dataset x seed x method, and its test evaluation; ablations
# (params.yaml's `ablations`), one job per dataset x seed x ablation that trains and evaluates every
# variant x method.


rule train_student:
    input:
        stage_inputs("train_student"),
    output:
        *stage_outputs("train_student"),
    params:
        p=stage_params("train_student"),
    log:
        stage_log("train_student"),
    resources:
        **stage_resources("train_student"),
    threads: 2
    conda:
        ENV
    shell:
        stage_shell("train_student", "--threads {threads}")


rule evaluate:
    input:
        stage_inputs("evaluate"),
    output:
        *stage_outputs("evaluate"),
    params:
        p=stage_params("evaluate"),
    log:
        stage_log("evaluate"),
    resources:
        **stage_resources("evaluate"),
    threads: 2
    conda:
        ENV
    shell:
        stage_shell("evaluate", "--threads {threads}")


rule ablate:
    input:
        stage_inputs("ablate"),
    output:
        *stage_outputs("ablate"),
    params:
        p=stage_params("ablate"),
    log:
        stage_log("ablate"),
    resources:
        **stage_resources("ablate"),
    threads: 2
    conda:
        ENV
    shell:
        stage_shell("ablate", "--threads {threads}")
