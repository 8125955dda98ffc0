"""params.yaml validation: every error names the key and what is allowed."""

import copy
from pathlib import Path

import pytest
import yaml

from g2d.config.params import deep_merge, load_params, params_from_dict
from g2d.config.schema import ConfigError

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


@pytest.mark.parametrize("changes, message", [
    ({"bogus": 1}, r"bogus: unknown key; allowed keys here: .*alpha"),
    ({"tau1": -3}, r"tau1: must be a non-negative"),
    ({"tau1": DELETE}, r"tau1: missing"),
    ({"tau2": "ten"}, r"tau2: expected an integer"),
    ({"lr": "fast"}, r"lr: expected a number"),
    ({"fusion": "film"}, r"fusion: unknown fusion 'film'; choose from late, sum, concat"),
    ({"methods": ["joint", "magic"]}, r"methods\[1\]: unknown method 'magic'; choose from joint, g2d"),
    ({"datasets__demo__source": "vggsound"}, r"datasets.demo.source: unknown source 'vggsound'; choose from cremad"),
    ({"datasets__demo__encoders__audio": "vit"}, r"datasets.demo.encoders.audio: unknown encoder 'vit'"),
    ({"datasets__demo__encoders__text": "small_cnn"}, r"datasets.demo.encoders.text: the cremad source has no"),
    ({"datasets__demo__preprocess__audio__n_fft": 0}, r"datasets.demo.preprocess.audio.n_fft"),
    ({"datasets__demo__preprocess__split__by": "random"}, r"datasets.demo.preprocess.split.by: 'random' is not allowed"),
    ({"smp__suppression": "soft"}, r"smp.suppression: 'soft' is not allowed; choose one of zero_grad, freeze, partial"),
    ({"smp__ranking": "epoch"}, r"smp.ranking: 'epoch' is not allowed"),
    ({"optimizer": "lbfgs"}, r"optimizer: 'lbfgs' is not allowed; choose one of sgd, adam, adamw"),
    ({"device": "tpu"}, r"device: 'tpu' is not allowed"),
    ({"seeds": []}, r"seeds: give at least one seed"),
    ({"teacher__epochs": 0}, r"teacher.epochs: must be a positive"),
    ({"demo__bogus": 1}, r"demo.bogus: unknown key"),
    ({"tau5": 3}, r"tau4: missing"),
    ({"data__loading": "disk"}, r"data.loading: 'disk' is not allowed; choose one of auto, memory, stream"),
    ({"data__workers": -1}, r"data.workers: must be 0"),
    ({"data__memory_fraction": 0}, r"data.memory_fraction: must be in \(0, 1\]"),
])
def test_errors_name_the_key(changes, message):
    with pytest.raises(ConfigError, match=message):
        params_from_dict(mutate(**changes))


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
