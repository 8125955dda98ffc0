# g2d pipeline, Snakemake front end. The stages, their files and the params each one reads come
# from g2d.pipeline (dvc.yaml declares the same, checked by tests/test_dag_spec.py); every rule
# calls the `g2d` command line. Run: snakemake --cores 8 [--use-conda] [--configfile PRESET.yaml]

configfile: "params.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/teachers.smk"
include: "workflow/rules/students.smk"
include: "workflow/rules/report.smk"


rule all:
    default_target: True
    input:
        REPORT_FILES,
