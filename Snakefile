# g2d pipeline, Snakemake front end. The stages, their files, the params each one reads and the code
# it runs come from g2d.pipeline (dvc.yaml is generated from the same by `g2d dvc-yaml`); every rule
# calls the `g2d` command line and writes its output to logs/. Run: snakemake --cores 8 [--use-conda]
# [--configfile PRESET.yaml]

configfile: "params.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/teachers.smk"
include: "workflow/rules/students.smk"
include: "workflow/rules/report.smk"


rule all:
    default_target: True
    input:
        RULES.outputs("report"),
