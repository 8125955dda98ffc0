"""params.yaml validation: every error names the key and what is allowed."""

import copy
import dataclasses
from pathlib import Path

import pytest
import yaml

from g2d.config.params import AugmentParams, deep_merge, load_params, params_from_dict
from g2d.config.schema import ConfigError
from g2d.methods import METHODS

ROOT = Path(__file__).resolve().parents[1]
BASE = yaml.safe_load((ROOT / "params.yaml").read_text())


def mutate(**changes):
    d = copy.deepcopy(BASE)
    for key, value in changes.items():
        node = d
        parts = key.split("__")
        for p in parts[:-1]:
            node = node[p]
        if value is DELETE:
            del node[parts[-1]]
        else:
            node[parts[-1]] = value
    return d


DELETE = object()


def test_shipped_params_and_presets_validate():
    p = load_params([ROOT / "params.yaml"])
    assert p.taus(2) == (p.tau1, p.tau2)
    paper = load_params([ROOT / "params.yaml", ROOT / "config/presets/paper.yaml"])
    assert paper.lr == 1e-3 and paper.batch_size == 16 and (paper.tau1, paper.tau2) == (150, 150)
    assert p.datasets["demo"].augment.kind == "none"  # off by default, the reference's transform in the paper preset
    assert paper.datasets["cremad"].augment == AugmentParams(kind="views", modalities=("video",), views=8)


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"bogus": 1}, r"bogus: unknown key; allowed keys here: .*alpha"),
        ({"tau1": -3}, r"tau1: must be a non-negative"),
        ({"tau1": DELETE}, r"tau1: missing"),
        ({"tau2": "ten"}, r"tau2: expected an integer"),
        ({"lr": "fast"}, r"lr: expected a number"),
        ({"fusion": "tensor"}, r"fusion: unknown fusion 'tensor'; choose from late, sum, concat, .*cross_attention"),
        ({"ogm_ge__alpha": -1}, r"ogm_ge.alpha: must be non-negative"),
        ({"ogm_ge__end": 0}, r"ogm_ge.end: must be >= start"),
        ({"ogm_ge__ge": "yes"}, r"ogm_ge.ge: expected true or false"),
        ({"umt__weight": -0.5}, r"umt.weight: must be non-negative"),
        ({"mla__inference": "vote"}, r"mla.inference: 'vote' is not allowed; choose one of entropy, fixed"),
        ({"mmpareto__gamma": 0}, r"mmpareto.gamma: must be positive"),
        ({"mmpareto__rescale": "layer"}, r"mmpareto.rescale: 'layer' is not allowed; choose one of tensor, encoder"),
        ({"agm__alpha": -1}, r"agm.alpha: must be non-negative"),
        ({"agm__beta": 1}, r"agm.beta: unknown key; allowed keys here: alpha"),
        ({"methods": ["joint", "magic"]}, r"methods\[1\]: unknown method 'magic'; choose from joint, g2d"),
        (
            {"datasets__demo__source": "nope"},
            r"datasets.demo.source: unknown source 'nope'; choose from arrays, avmnist, cremad, misme, vggsound",
        ),
        ({"datasets__demo__encoders__audio": "vit"}, r"datasets.demo.encoders.audio: unknown encoder 'vit'"),
        ({"datasets__demo__encoders__text": "small_cnn"}, r"datasets.demo.encoders.text: the cremad source has no"),
        ({"datasets__demo__preprocess__audio__n_fft": 0}, r"datasets.demo.preprocess.audio.n_fft"),
        (
            {"datasets__demo__preprocess__split__by": "random"},
            r"datasets.demo.preprocess.split.by: 'random' is not allowed",
        ),
        (
            {"smp__suppression": "soft"},
            r"smp.suppression: 'soft' is not allowed; choose one of zero_grad, freeze, partial",
        ),
        ({"smp__ranking": "epoch"}, r"smp.ranking: 'epoch' is not allowed"),
        ({"smp__gate": "bn"}, r"smp.gate: 'bn' is not allowed; choose one of all, conv"),
        ({"film__modulated": "middle"}, r"film.modulated: 'middle' is not allowed; choose one of last, first"),
        ({"gated__form": "both"}, r"gated.form: 'both' is not allowed; choose one of symmetric, one_way"),
        ({"optimizer": "lbfgs"}, r"optimizer: 'lbfgs' is not allowed; choose one of sgd, adam, adamw"),
        ({"device": "tpu"}, r"device: 'tpu' is not allowed"),
        ({"seeds": []}, r"seeds: give at least one seed"),
        ({"teacher__epochs": 0}, r"teacher.epochs: must be a positive"),
        ({"demo__bogus": 1}, r"demo.bogus: unknown key"),
        ({"tau5": 3}, r"tau4: missing"),
        ({"data__loading": "disk"}, r"data.loading: 'disk' is not allowed; choose one of auto, memory, stream"),
        (
            {"data__workers": -1},
            r"data.workers: -1 is not allowed; give auto \(workers where there are spare cores\), 0",
        ),
        ({"data__workers": "many"}, r"data.workers: 'many' is not allowed; give auto"),
        ({"precision": "fp8"}, r"precision: 'fp8' is not allowed; choose one of fp32, bf16, fp16"),
        ({"precision": "fp16", "device": "cpu"}, r"precision: fp16 needs CUDA .*; on the CPU use bf16 or fp32"),
        (
            {"precision": "fp16", "methods": ["g2d", "mmpareto"]},
            r"precision: fp16 is not supported by mmpareto, which computes per-loss gradients outside the loss scaler",
        ),
        ({"data__memory_fraction": 0}, r"data.memory_fraction: must be in \(0, 1\]"),
        (
            {"datasets__demo__augment__kind": "random"},
            r"datasets.demo.augment.kind: 'random' is not allowed; choose one of none, views, online",
        ),
        ({"datasets__demo__augment__views": 0}, r"datasets.demo.augment.views: must be at least 1"),
        (
            {"datasets__demo__augment__scale": [0.5, 0.2]},
            r"datasets.demo.augment.scale: expected \[low, high\] with 0 < low <= high <= 1 .*got \[0.5, 0.2\]",
        ),
        ({"datasets__demo__augment__scale": [0.1, 1.5]}, r"datasets.demo.augment.scale: expected \[low, high\]"),
        ({"datasets__demo__augment__scale": [0.1]}, r"datasets.demo.augment.scale: expected two numbers"),
        (
            {"datasets__demo__augment__ratio": [0, 1]},
            r"datasets.demo.augment.ratio: expected \[low, high\] with 0 < low",
        ),
        ({"datasets__demo__augment__flip": "yes"}, r"datasets.demo.augment.flip: expected true or false"),
        (
            {"datasets__demo__augment__modalities": ["audio"]},
            r"datasets.demo.augment.modalities\[0\]: 'audio' is not a frame-stack or image modality of the cremad "
            r"source; choose from video",
        ),
        (
            {"datasets__demo__augment__modalities": [], "datasets__demo__augment__kind": "views"},
            r"datasets.demo.augment.modalities: an empty list augments nothing, so kind: views has no effect",
        ),
        (
            {"datasets__demo__augment__crop": 1},
            r"datasets.demo.augment.crop: unknown key; allowed keys here: flip, kind, modalities, ratio, scale, views",
        ),
        (
            {"datasets__demo__augment__kind": "online"},
            r"teacher_cache: must be false while datasets.demo.augment.kind is online: the methods g2d distil",
        ),
    ],
)
def test_errors_name_the_key(changes, message):
    with pytest.raises(ConfigError, match=message):
        params_from_dict(mutate(**changes))


def test_online_augmentation_needs_online_teachers_only_for_distilling_methods():
    online = {"datasets__demo__augment__kind": "online"}
    assert params_from_dict(mutate(**online, teacher_cache=False)).datasets["demo"].augment.kind == "online"
    assert params_from_dict(mutate(**online, methods=["joint"])).teacher_cache  # joint runs no teacher
    with pytest.raises(ConfigError, match=r"ablations.abl.values\[0\]: teacher_cache: must be false"):
        params_from_dict(
            deep_merge(
                mutate(**online, teacher_cache=False, methods=["joint"]),
                {"ablations": {"abl": {"over": "teacher_cache", "values": [True], "methods": ["g2d"]}}},
            )
        )


def test_more_than_three_taus():
    p = params_from_dict(mutate(tau4=2, tau5=1))
    assert p.taus(5) == (p.tau1, p.tau2, p.tau3, 2, 1)
    with pytest.raises(ConfigError, match="tau6"):
        p.taus(6)


def test_deep_merge_overlays_nested_keys():
    merged = deep_merge({"a": {"b": 1, "c": 2}, "d": 3}, {"a": {"b": 5}, "e": 4})
    assert merged == {"a": {"b": 5, "c": 2}, "d": 3, "e": 4}


def test_bad_yaml_file_is_named(tmp_path):
    bad = tmp_path / "p.yaml"
    bad.write_text("tau1: [unclosed\n")
    with pytest.raises(ConfigError, match="p.yaml: not valid YAML"):
        load_params([bad])


def ablation(**spec):
    return {"ablations": {"abl": {"over": "fusion", "values": ["late", "concat"], "methods": ["g2d"], **spec}}}


@pytest.mark.parametrize(
    "spec, message",
    [
        (
            {"over": "teacher.epochs"},
            r"ablations.abl.over: 'teacher.epochs' is not a student param .*choose from .*fusion",
        ),
        ({"over": ["tau1", "seeds"], "values": [[1, 2]]}, r"ablations.abl.over\[1\]: 'seeds' is not a student param"),
        (
            {"values": ["late", "tensor"]},
            r"ablations.abl.values\[1\]: fusion: unknown fusion 'tensor'; choose from late",
        ),
        (
            {"over": "smp.suppression", "values": ["soft"]},
            r"ablations.abl.values\[0\]: smp.suppression: 'soft' is not allowed; choose one of zero_grad",
        ),
        (
            {"over": "smp.bogus", "values": [1]},
            r"ablations.abl.values\[0\]: smp.bogus: unknown key; allowed keys here: gate, ranking, suppression",
        ),
        ({"over": "ogm_ge.alpha", "values": [-1]}, r"ablations.abl.values\[0\]: ogm_ge.alpha: must be non-negative"),
        ({"over": "fusion.kind", "values": [1]}, r"ablations.abl.values\[0\]: fusion: has no keys inside it"),
        (
            {"over": ["tau1", "tau2"], "values": [[1, 2], [3]]},
            r"ablations.abl.values\[1\]: expected a list of 2 values",
        ),
        (
            {"over": ["tau1", "tau2"], "values": [[0, 0]]},
            r"ablations.abl.values\[0\]: tau1: tau1 \+ tau2 must be positive",
        ),
        ({"values": ["late", "late"]}, r"ablations.abl.values: variant names must be distinct"),
        ({"names": ["a"]}, r"ablations.abl.names: give one name per value \(2\)"),
        ({"names": ["a b", "c"]}, r"ablations.abl.names\[0\]: variant name 'a b' is not a plain folder name"),
        ({"methods": ["g2d", "magic"]}, r"ablations.abl.methods\[1\]: unknown method 'magic'"),
        ({"methods": []}, r"ablations.abl.methods: name at least one"),
        ({"values": []}, r"ablations.abl.values: give at least one value"),
        ({"bogus": 1}, r"ablations.abl.bogus: unknown key; allowed keys here: methods, names, over, values"),
    ],
)
def test_ablation_errors_name_the_key(spec, message):
    with pytest.raises(ConfigError, match=message):
        params_from_dict(deep_merge(BASE, ablation(**spec)))


def test_ablation_names_must_be_file_names():
    bad = deep_merge(BASE, {"ablations": {"my-abl": ablation()["ablations"]["abl"]}})
    with pytest.raises(ConfigError, match=r"ablations.my-abl: ablation names may use letters, digits and _ only"):
        params_from_dict(bad)


def test_variants_override_only_their_keys():
    p = params_from_dict(
        deep_merge(
            BASE,
            {
                "ablations": {
                    "taus": {"over": ["tau1", "tau2"], "values": [[0, 4], [2, 2]], "methods": ["g2d"]},
                    "smp": {
                        "over": "smp.suppression",
                        "values": ["partial"],
                        "names": ["soft"],
                        "methods": ["g2d", "joint"],
                    },
                    "lr": {"over": "lr", "values": [1, 0.5], "methods": ["joint"]},
                }
            },
        )
    )
    assert list(p.ablations["taus"].overrides()) == ["0-4", "2-2"]
    v = p.variant("taus", "0-4")
    assert (v.tau1, v.tau2) == (0, 4) and v.fusion == p.fusion and v.ablations == p.ablations
    soft = p.variant("smp", "soft")
    assert soft.smp.suppression == "partial" and soft.smp.ranking == p.smp.ranking
    assert isinstance(p.variant("lr", "1").lr, float)
    with pytest.raises(ConfigError, match=r"ablations.taus: unknown variant '9-9'; its variants: 0-4, 2-2"):
        p.variant("taus", "9-9")
    with pytest.raises(ConfigError, match=r"ablations.nope: no such ablation in params; defined: taus, smp, lr"):
        p.variant("nope", "x")


def test_ablation_presets_validate():
    tiny = [ROOT / "params.yaml", ROOT / "config/presets/tiny.yaml", ROOT / "config/presets/ablations-tiny.yaml"]
    paper = [ROOT / "params.yaml", ROOT / "config/presets/paper.yaml", ROOT / "config/presets/ablations.yaml"]
    for files in (tiny, paper):
        p = load_params(files)
        assert set(p.ablations) == {"smp", "fusion", "suppression", "taus"}
        assert set(p.methods) == set(METHODS) - {"misme"}  # Table 1's methods; MIS-ME is Table 3's regression baseline
    assert load_params([ROOT / "params.yaml"]).ablations == {}


def test_check_warns_on_adam_with_gradient_scaling_rules():
    from g2d.config.params import optimizer_warnings

    sgd = params_from_dict(
        mutate(
            optimizer="sgd",
            methods=["joint", "g2d", "ogm_ge", "agm"],
            smp={"ranking": "batch", "suppression": "partial"},
        )
    )
    assert optimizer_warnings(sgd) == []
    adam = params_from_dict(mutate(optimizer="adamw", methods=["joint", "ogm_ge", "agm", "g2d"]))
    (line,) = optimizer_warnings(adam)
    assert "optimizer: adamw with ogm_ge, agm:" in line and "g2d" not in line  # zero_grad: no coefficient
    partial = params_from_dict(
        mutate(optimizer="adam", methods=["g2d", "joint"], smp={"ranking": "batch", "suppression": "partial"})
    )
    assert "g2d (smp.suppression: partial)" in optimizer_warnings(partial)[0]
    variant = params_from_dict(
        mutate(
            optimizer="sgd",
            methods=["joint"],
            ablations={"opt": {"over": "optimizer", "values": ["sgd", "adam"], "methods": ["ogm_ge"]}},
        )
    )
    (line,) = optimizer_warnings(variant)
    assert line.startswith("ablations.opt variant adam: optimizer: adam with ogm_ge")
    per_dataset = mutate(optimizer="sgd", methods=["joint", "agm"])
    per_dataset["datasets"]["demo"]["student"] = {"optimizer": "adamw"}
    (line,) = optimizer_warnings(params_from_dict(per_dataset))
    assert line.startswith("datasets.demo.student: optimizer: adamw with agm")


def test_check_command_prints_the_warning(tmp_path, capsys):
    from g2d.cli import main

    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(mutate(optimizer="adam", methods=["joint", "ogm_ge"])))
    assert main(["check", "--params", str(path)]) == 0
    err = capsys.readouterr().err
    assert "g2d check: warning: optimizer: adam with ogm_ge" in err


def two_datasets(student: dict, **extra) -> dict:
    """BASE with a second dataset `other` (the demo's settings) whose `student` section is `student`."""
    d = copy.deepcopy(BASE)
    d["datasets"]["other"] = {**copy.deepcopy(d["datasets"]["demo"]), "student": student}
    return deep_merge(d, extra)


def test_dataset_student_overrides_apply_to_their_dataset_only():
    p = params_from_dict(two_datasets({"ogm_ge.alpha": 0.8, "smp": {"gate": "conv"}, "fusion": "film"}))
    other, demo = p.for_dataset("other"), p.for_dataset("demo")
    assert (other.section("ogm_ge").alpha, other.smp.gate, other.fusion) == (0.8, "conv", "film")
    assert (
        other.section("ogm_ge").end == p.section("ogm_ge").end and other.smp.suppression == p.smp.suppression
    )  # only the keys named
    assert demo == dataclasses.replace(p, dataset="demo") and p.section("ogm_ge").alpha == 0.1
    with pytest.raises(ConfigError, match=r"datasets.nope: no such dataset in params; defined: demo, other"):
        p.for_dataset("nope")


def test_ablation_variant_applies_on_top_of_the_dataset_overrides():
    p = params_from_dict(
        two_datasets(
            {"ogm_ge.alpha": 0.8, "smp.gate": "conv"},
            ablations={"alpha": {"over": "ogm_ge.alpha", "values": [0.3], "methods": ["ogm_ge"]}},
        )
    )
    v = p.for_dataset("other").variant("alpha", "0.3")
    assert v.section("ogm_ge").alpha == 0.3 and v.smp.gate == "conv"


@pytest.mark.parametrize(
    "student, message",
    [
        ({"teacher.epochs": 3}, r"datasets.other.student.teacher.epochs: 'teacher.epochs' is not a student param"),
        ({"seeds": [1]}, r"datasets.other.student.seeds: 'seeds' is not a student param .*choose from .*ogm_ge"),
        ({"ogm_ge.alpha": -1}, r"datasets.other.student.ogm_ge.alpha: must be non-negative"),
        ({"ogm_ge": {"bogus": 1}}, r"datasets.other.student.ogm_ge.bogus: unknown key; allowed keys here: alpha"),
        ({"smp.gate": "bn"}, r"datasets.other.student.smp.gate: 'bn' is not allowed; choose one of all, conv"),
        ({"fusion": "tensor"}, r"datasets.other.student.fusion: unknown fusion 'tensor'; choose from late"),
        ({"lr": "fast"}, r"datasets.other.student.lr: expected a number"),
    ],
)
def test_bad_dataset_student_overrides_name_the_key(student, message):
    with pytest.raises(ConfigError, match=message):
        params_from_dict(two_datasets(student))


def test_an_ablation_invalid_on_a_dataset_s_overrides_is_refused():
    bad = two_datasets(
        {"ogm_ge.start": 10}, ablations={"end": {"over": "ogm_ge.end", "values": [5], "methods": ["ogm_ge"]}}
    )
    with pytest.raises(
        ConfigError,
        match=r"ablations.end.values\[0\] on top of datasets.other.student: "
        r"ogm_ge.end: must be >= start \(10\)",
    ):
        params_from_dict(bad)


def test_student_runs_of_the_cli_use_the_dataset_params():
    import argparse

    from g2d.cli import _run_params

    p = params_from_dict(
        two_datasets(
            {"ogm_ge.alpha": 0.8}, ablations={"gate": {"over": "smp.gate", "values": ["conv"], "methods": ["g2d"]}}
        )
    )
    run = argparse.Namespace(dataset="other", ablation=None, variant=None)
    assert _run_params(p, run).section("ogm_ge").alpha == 0.8
    assert _run_params(p, argparse.Namespace(**{**vars(run), "dataset": "demo"})).section("ogm_ge").alpha == 0.1
    v = _run_params(p, argparse.Namespace(**{**vars(run), "ablation": "gate", "variant": "conv"}))
    assert v.section("ogm_ge").alpha == 0.8 and v.smp.gate == "conv"


def test_dataset_student_section_reruns_exactly_the_student_stages():
    from g2d import pipeline

    readers = {s.name for s in pipeline.STAGES if "datasets.{dataset}.student" in s.params}
    assert readers == {"train_student", "ablate"}


def test_paper_preset_sets_ogm_alpha_for_cremad_only():
    paper = load_params([ROOT / "params.yaml", ROOT / "config/presets/paper.yaml"])
    assert paper.section("ogm_ge").alpha == 0.1 and paper.for_dataset("cremad").section("ogm_ge").alpha == 0.8


def key_paths(node: dict, prefix: tuple[str, ...] = ()):
    """Every key params.yaml sets, as a path, sections before the keys inside them."""
    for key, value in node.items():
        yield (*prefix, key)
        if isinstance(value, dict):
            yield from key_paths(value, (*prefix, key))


def without(data: dict, path: tuple[str, ...]) -> dict:
    out = copy.deepcopy(data)
    node = out
    for key in path[:-1]:
        node = node[key]
    del node[path[-1]]
    return out


# Keys with no default: leaving one out is an error (checked below), never a silent fallback.
REQUIRED = {
    "seeds",
    "datasets",
    "datasets.demo",
    "datasets.demo.source",
    "datasets.demo.raw_dir",
    "datasets.demo.encoders",
    "datasets.demo.encoders.audio",
    "datasets.demo.encoders.video",
    "methods",
    "tau1",
    "tau2",
}
# Keys whose absence means something other than a default: no `demo` section means no demo generator, and a
# dataset's `preprocess` section is that dataset's choice, not its source's default (CREMA-D's defaults are the
# reference's 22,050 Hz audio and 224 px frames; the demo dataset sets CPU sizes).
NOT_DEFAULTS = {
    "demo",
    "misme_demo",
    "trimodal_demo",
    "datasets.demo.preprocess",
}  # sections whose absence means "none"


def test_every_default_is_the_value_params_yaml_documents():
    """Dropping any key params.yaml sets (as a preset may, with null) gives the same params: the dataclass
    defaults cannot drift from the documented values."""
    full = params_from_dict(BASE)
    checked = 0
    for path in key_paths(BASE):
        name = ".".join(path)
        if name in NOT_DEFAULTS or any(name.startswith(f"{skip}.") for skip in NOT_DEFAULTS):
            continue
        if name in REQUIRED:
            with pytest.raises(ConfigError):
                params_from_dict(without(BASE, path))
            continue
        assert params_from_dict(without(BASE, path)) == full, f"{name}: its default differs from params.yaml's value"
        checked += 1
    assert checked > 50


@pytest.mark.parametrize(
    "preset, classes", [("urfunny", ("not_humour", "humour")), ("iemocap", ("neutral", "happy", "sad", "angry"))]
)
def test_three_modality_sequence_presets_validate(preset, classes):
    """UR-Funny and IEMOCAP: the arrays source on convert-pickle's output, three sequence encoders, a tau
    per modality, SGD with momentum."""
    p = load_params([ROOT / "params.yaml", ROOT / f"config/presets/{preset}.yaml"])
    assert list(p.datasets) == [preset]
    ds = p.datasets[preset]
    assert ds.source == "arrays" and ds.raw_dir == f"data/raw/{preset}"
    assert ds.preprocess.modalities == ("text", "audio", "vision") and ds.preprocess.class_names == classes
    assert ds.preprocess.token_modalities == () and ds.augment.kind == "none"
    assert {spec["name"] for spec in ds.encoders.values()} == {"sequence_transformer"}
    assert len(p.taus(3)) == 3 and all(t > 0 for t in p.taus(3))
    assert p.optimizer == "sgd" and p.momentum == 0.9


def test_a_null_dataset_or_ablation_in_an_overlay_drops_it_as_snakemake_merges_overlays():
    """Snakemake merges --configfile overlays itself, keeping a `null` where deep_merge drops the key: a
    dataset or an ablation set to null is then absent, the same under both front ends."""
    base = yaml.safe_load((ROOT / "params.yaml").read_text())
    merged = deep_merge(base, yaml.safe_load((ROOT / "config/presets/ablations-tiny.yaml").read_text()))
    snakemake_style = {**merged, "ablations": {**merged["ablations"], "fusion": None}}
    assert "fusion" not in params_from_dict(snakemake_style).ablations
    assert set(params_from_dict(snakemake_style).ablations) == {"smp", "suppression", "taus"}
