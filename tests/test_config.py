"""Config loading: layering, overrides, and one clear error per bad input."""

from __future__ import annotations

import pytest

from dagrad.config import ExperimentConfig, config_hash, load_config
from dagrad.errors import ConfigError


def write(path, text):
    path.write_text(text)
    return path


def test_defaults_are_the_digits_benchmark():
    cfg = load_config()
    assert isinstance(cfg, ExperimentConfig)
    assert (cfg.data.name, cfg.data.test_envs, cfg.algorithm.name, cfg.gradsamp.sampler) == (
        "rotated_digits", [5], "erm", "none")


def test_include_layers_and_overrides_win(tmp_path):
    write(tmp_path / "data.yaml", "data: {name: stroke_digits, test_envs: [0], batch_size: 16}\n")
    write(tmp_path / "algo.yaml", "algorithm: {name: erm, hparams: {lr: 1e-4}}\n")
    exp = write(tmp_path / "exp.yaml", "include: [data.yaml, algo.yaml]\ndata: {batch_size: 24}\nepochs: 4\n")
    cfg = load_config(exp, ["epochs=7", "algorithm.hparams.lr=0.01", "gradsamp.epochs=[3,5]"])
    assert cfg.data.name == "stroke_digits" and cfg.data.test_envs == [0]
    assert cfg.data.batch_size == 24  # the including file wins over the included one
    assert cfg.epochs == 7  # the command line wins over files
    assert cfg.algorithm.hparams == {"lr": 0.01}
    assert cfg.gradsamp.epochs == [3, 5]


def test_yaml_scientific_notation_is_a_float(tmp_path):
    exp = write(tmp_path / "e.yaml", "energy: {watts_per_thread: 4e0}\n")
    assert load_config(exp).energy.watts_per_thread == 4.0


@pytest.mark.parametrize("override, message", [
    (["data.fo=1"], "unknown key 'data.fo'; allowed keys in data: name, root"),
    (["epoch=3"], "unknown key 'epoch'"),
    (["epochs=abc"], "epochs: expected an integer, got 'abc'"),
    (["data.augment=maybe"], "data.augment: expected true or false"),
    (["data.setting=semi"], "data.setting: 'semi' is not allowed; choose one of: dg, da"),
    (["algorithm.name=irm"], "algorithm.name: unknown algorithm 'irm'; choose one of: "),
    (["data.name=mnist"], "data.name: unknown dataset 'mnist'; choose one of:"),
    (["network.name=vgg"], "network.name: unknown network 'vgg'"),
    (["algorithm.hparams.lrate=1"], "algorithm.hparams.lrate: not a hyperparameter of erm; allowed: lr, weight_decay"),
    (["algorithm.hparams.lr=fast"], "algorithm.hparams.lr: expected a number, got 'fast'"),
    (["epochs=0"], "epochs: must be at least 1"),
    (["data.holdout_fraction=1.5"], "data.holdout_fraction: must be between 0 and 1"),
    (["epochs"], "must look like key=value"),
    (["gradsamp.probability=2"], "gradsamp.probability: must be in [0, 1]"),
])
def test_bad_input_names_the_key(override, message):
    with pytest.raises(ConfigError) as err:
        load_config(None, override)
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_unknown_algorithm_lists_every_builtin():
    with pytest.raises(ConfigError) as err:
        load_config(None, ["algorithm.name=irm"])
    allowed = str(err.value).split("choose one of: ")[1].split(", ")
    assert {"erm", "coral", "dann", "dann_grl"} <= set(allowed) and allowed == sorted(allowed)


def test_bad_files(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "missing.yaml")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(write(tmp_path / "bad.yaml", "data: [unclosed\n"))
    with pytest.raises(ConfigError, match="expected a mapping at the top level"):
        load_config(write(tmp_path / "list.yaml", "- 1\n- 2\n"))
    with pytest.raises(ConfigError, match="includes itself"):
        load_config(write(tmp_path / "loop.yaml", "include: loop.yaml\n"))
    with pytest.raises(ConfigError, match="data: expected a mapping"):
        load_config(write(tmp_path / "scalar.yaml", "data: 3\n"))


def test_hash_ignores_where_a_run_executes_but_not_what_it_computes():
    a = load_config(None, ["name=a"])
    b = load_config(None, ["name=b", "device=cpu", "data.root=/elsewhere", "data.num_workers=4"])
    assert config_hash(a) == config_hash(b)
    assert config_hash(a) != config_hash(load_config(None, ["trial_seed=1"]))


def test_random_hparams_are_seeded_per_name():
    from dagrad.algorithms import resolve_hparams

    defaults = resolve_hparams("erm", {}, 0, "pacs")
    assert defaults == {"lr": 5e-5, "weight_decay": 0.0}
    drawn = resolve_hparams("erm", {}, 3, "pacs")
    assert drawn == resolve_hparams("erm", {}, 3, "pacs")
    assert 1e-5 <= drawn["lr"] <= 10 ** -3.5 and 1e-6 <= drawn["weight_decay"] <= 1e-2
    assert resolve_hparams("erm", {}, 0, "rotated_digits")["lr"] == 1e-3  # DomainBed's MNIST default
    assert resolve_hparams("erm", {"lr": 0.5}, 3, "pacs") == {**drawn, "lr": 0.5}
