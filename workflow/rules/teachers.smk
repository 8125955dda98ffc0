# Unimodal teachers and their score cache (features, logits, confidence per split).


rule train_teachers:
    input:
        pipeline.PROCESSED,
    output:
        directory(pipeline.TEACHERS),
    params:
        p=stage_params("train_teachers"),
    threads: 2
    conda:
        ENV
    shell:
        "{G2D} train-teachers --dataset {wildcards.dataset} --seed {wildcards.seed} --threads {threads}"


rule score:
    input:
        pipeline.PROCESSED,
        pipeline.TEACHERS,
    output:
        pipeline.SCORES,
        pipeline.TEACHER_METRICS,
        pipeline.TEACHER_PLOT,
    params:
        p=stage_params("score"),
    threads: 2
    conda:
        ENV
    shell:
        "{G2D} score --dataset {wildcards.dataset} --seed {wildcards.seed} --threads {threads}"
