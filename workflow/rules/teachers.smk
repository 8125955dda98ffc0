# Unimodal teachers and their score cache (features, logits, confidence per split).


rule train_teachers:
    input:
        stage_inputs("train_teachers"),
    output:
        *stage_outputs("train_teachers"),
    params:
        p=stage_params("train_teachers"),
    log:
        stage_log("train_teachers"),
    resources:
        **stage_resources("train_teachers"),
    threads: 2
    conda:
        ENV
    shell:
        stage_shell("train_teachers", "--threads {threads}")


rule score:
    input:
        stage_inputs("score"),
    output:
        *stage_outputs("score"),
    params:
        p=stage_params("score"),
    log:
        stage_log("score"),
    resources:
        **stage_resources("score"),
    threads: 2
    conda:
        ENV
    shell:
        stage_shell("score", "--threads {threads}")
