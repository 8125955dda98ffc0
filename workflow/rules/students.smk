# The multimodal student, one job per dataset x seed x method, and its test evaluation; ablations
# (params.yaml's `ablations`), one job per dataset x seed x ablation that trains and evaluates every
# variant x method.


rule train_student:
    input:
        pipeline.PROCESSED,
        pipeline.SCORES,
        pipeline.TEACHERS,
    output:
        pipeline.STUDENT,
        pipeline.STUDENT_LOG,
    params:
        p=stage_params("train_student"),
    threads: 2
    conda:
        ENV
    shell:
        "{G2D} train-student --dataset {wildcards.dataset} --seed {wildcards.seed} --method {wildcards.method}"
        " --threads {threads}"


rule evaluate:
    input:
        pipeline.PROCESSED,
        pipeline.SCORES,
        pipeline.STUDENT,
    output:
        pipeline.EVAL,
    params:
        p=stage_params("evaluate"),
    threads: 2
    conda:
        ENV
    shell:
        "{G2D} evaluate --dataset {wildcards.dataset} --seed {wildcards.seed} --method {wildcards.method}"
        " --threads {threads}"


rule ablate:
    input:
        pipeline.PROCESSED,
        pipeline.SCORES,
        pipeline.TEACHERS,
    output:
        directory(pipeline.ABLATION),
    params:
        p=stage_params("ablate"),
    threads: 2
    conda:
        ENV
    shell:
        "{G2D} ablate --dataset {wildcards.dataset} --seed {wildcards.seed} --ablation {wildcards.ablation}"
        " --threads {threads}"
