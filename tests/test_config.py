"""Config loading: layering, overrides, and one clear error per bad input (schema and registries)."""

from __future__ import annotations

import pytest

from dagrad.config.schema import ExperimentConfig
from dagrad.utils.errors import ConfigError
from dagrad.config.experiment import load_experiment


def load_config(paths=None, overrides=None) -> ExperimentConfig:
    """The config, checked against the schema and the registries."""
    return load_experiment(paths, overrides).cfg


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
    cfg = load_config(exp, ["epochs=7", "algorithm.hparams.lr=0.01", "gradsamp.schedule_options.epochs=[3,5]"])
    assert cfg.data.name == "stroke_digits" and cfg.data.test_envs == [0]
    assert cfg.data.batch_size == 24  # the including file wins over the included one
    assert cfg.epochs == 7  # the command line wins over files
    assert cfg.algorithm.hparams == {"lr": 0.01}
    assert cfg.gradsamp.schedule_options == {"epochs": [3, 5]}


def test_yaml_scientific_notation_is_a_float(tmp_path):
    exp = write(tmp_path / "e.yaml", "energy: {backends: {estimate: {watts_per_thread: 4e0}}}\n")
    assert load_experiment(exp).energy.backend.options["estimate"]["watts_per_thread"] == 4.0
    assert load_config(write(tmp_path / "f.yaml", "algorithm: {hparams: {lr: 1e-4}}\n")).algorithm.hparams == {
        "lr": "1e-4"}  # kept as given; checked (and turned into a number) when resolved
    assert load_experiment(tmp_path / "f.yaml").hparams["lr"] == 1e-4


@pytest.mark.parametrize("override, message", [
    (["data.fo=1"], "unknown key 'data.fo'; allowed keys in data: name, root"),
    (["epoch=3"], "unknown key 'epoch'"),
    (["epochs=abc"], "epochs: expected an integer, got 'abc'"),
    (["data.augment=maybe"], "data.augment: expected true or false"),
    (["data.setting=semi"], "data.setting: 'semi' is not allowed; choose one of: dg, da"),
    (["gradsamp.sampler=gauss"], "gradsamp.sampler: unknown sampler 'gauss'; choose one of: element, ema, extrapolate"),
    (["gradsamp.sampler=tensor", "gradsamp.sampler_options.c=1"],
     "gradsamp.sampler_options.c: not an option of tensor; allowed: scale"),
    (["gradsamp.sampler=element", "gradsamp.sampler_options.c=-1"],
     "gradsamp.sampler_options.c: -1.0 is out of range; allowed: a finite number >= 0"),
    (["gradsamp.sampler=tensor", "gradsamp.schedule_options.every=0"],
     "gradsamp.schedule_options.every: 0 is out of range; allowed: an integer >= 1"),
    (["averaging.name=ema"], "averaging.name: unknown averager 'ema'; choose one of: swad"),
    (["averaging.name=swad", "averaging.options.n_tolerance=0"], "averaging.options.n_tolerance: 0 is out of range"),
    (["energy.backend=wattmeter"], "energy.backend: unknown energy backend 'wattmeter'"),
    (["energy.backends.estimate.watts_per_thread=0"], "energy.backends.estimate.watts_per_thread: 0.0 is out of range"),
    (["energy.backends.nvml.hz=3"], "energy.backends.nvml.hz: not an option of nvml; allowed: poll_hz"),
    (["network.options.width=0"], "network.options.width: 0 is out of range; allowed: an integer >= 1"),
    (["data.options.angles=[0]", "data.options.colour=1"], "data.options.colour: not an option of rotated_digits"),
    (["algorithm.name=no_such_algorithm"], "algorithm.name: unknown algorithm 'no_such_algorithm'; choose one of: "),
    (["data.name=mnist"], "data.name: unknown dataset 'mnist'; choose one of:"),
    (["network.name=vgg"], "network.name: unknown network 'vgg'"),
    (["algorithm.hparams.lrate=1"], "algorithm.hparams.lrate: not a hyperparameter of erm; allowed: lr, weight_decay"),
    (["algorithm.hparams.lr=fast"], "algorithm.hparams.lr: expected a number, got 'fast'"),
    (["epochs=0"], "epochs: 0 is out of range; allowed: an integer >= 1"),
    (["data.holdout_fraction=1.5"], "data.holdout_fraction: 1.5 is out of range; allowed: a finite number in (0, 0.5]"),
    (["epochs"], "must look like key=value"),
    (["gradsamp.sampler=tensor", "gradsamp.schedule=random", "gradsamp.schedule_options.probability=2"],
     "gradsamp.schedule_options.probability: 2.0 is out of range; allowed: a finite number in [0, 1]"),
])
def test_bad_input_names_the_key(override, message):
    with pytest.raises(ConfigError) as err:
        load_config(None, override)
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_unknown_algorithm_lists_every_builtin():
    with pytest.raises(ConfigError) as err:
        load_config(None, ["algorithm.name=no_such_algorithm"])
    allowed = str(err.value).split("choose one of: ")[1].split(", ")
    assert {"erm", "coral", "dann", "dann_grl", "irm", "groupdro", "mixup", "vrex", "ermplusplus", "fishr"} <= set(allowed)
    assert allowed == sorted(allowed)


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


def test_identity_ignores_where_a_run_executes_but_not_what_it_computes():
    a = load_experiment(None, ["name=a"])
    b = load_experiment(None, ["name=b", "device=cpu", "data.root=/elsewhere", "data.num_workers=4",
                               "data.eval_batch_size=64"])
    assert a.run_id == b.run_id
    assert a.run_id != load_experiment(None, ["trial_seed=1"]).run_id


def test_identity_is_canonical_options_spelled_or_defaulted():
    """Options given at their defaults, or settings of a switched-off GradSamp, do not change the identity."""
    base = load_experiment(None, ["gradsamp.sampler=element"])
    same = load_experiment(None, ["gradsamp.sampler=element", "gradsamp.sampler_options={c: 0.5, scale: 1}",
                                  "gradsamp.schedule_options.every=3", "network.options.width=32"])
    assert base.run_id == same.run_id
    assert base.run_id != load_experiment(None, ["gradsamp.sampler=element", "gradsamp.sampler_options.c=0.2"]).run_id
    off = load_experiment(None, [])
    assert off.run_id == load_experiment(None, ["gradsamp.schedule_options.every=5", "gradsamp.guard=true"]).run_id


def test_shipped_configs_by_name_and_includes(tmp_path):
    exp = load_experiment(["experiments/pacs"])
    assert exp.cfg.data.name == "pacs" and exp.cfg.steps_per_epoch == 300  # the experiment includes datasets/pacs
    write(tmp_path / "mine.yaml", "include: demo\nepochs: 4\n")
    cfg = load_config(tmp_path / "mine.yaml")
    assert cfg.epochs == 4 and cfg.steps_per_epoch == 25  # the rest from the shipped demo config
    with pytest.raises(ConfigError, match="no shipped config of that name"):
        load_config("experiments/nowhere")


def test_yaml_duplicate_keys_and_bad_includes_are_one_line(tmp_path):
    with pytest.raises(ConfigError, match="key 'epochs' appears twice \\(line 1 and line 2\\)"):
        load_config(write(tmp_path / "dup.yaml", "epochs: 3\nepochs: 4\n"))
    for text in ("include: 5\n", "include: [null]\n"):
        with pytest.raises(ConfigError, match="include: expected a file path or a list of file paths"):
            load_config(write(tmp_path / "inc.yaml", text))
    (tmp_path / "latin.yaml").write_bytes("name: caf\xe9\n".encode("latin-1"))
    with pytest.raises(ConfigError, match="not a UTF-8 text file"):
        load_config(tmp_path / "latin.yaml")


def test_random_hparams_are_seeded_per_name():
    from dagrad.algorithms import resolve_hparams

    defaults = resolve_hparams("erm", {}, 0, small_images=False)
    assert defaults == {"lr": 5e-5, "weight_decay": 0.0}
    drawn = resolve_hparams("erm", {}, 3, small_images=False)
    assert drawn == resolve_hparams("erm", {}, 3, small_images=False)
    assert 1e-5 <= drawn["lr"] <= 10 ** -3.5 and 1e-6 <= drawn["weight_decay"] <= 1e-2
    assert resolve_hparams("erm", {}, 0, small_images=True)["lr"] == 1e-3  # DomainBed's MNIST default
    assert resolve_hparams("erm", {"lr": 0.5}, 3, small_images=False) == {**drawn, "lr": 0.5}
    for bad, allowed in (({"lr": -1}, "> 0"), ({"lr": float("inf")}, "finite"), ({"weight_decay": -1}, ">= 0")):
        with pytest.raises(ConfigError, match=allowed):
            resolve_hparams("erm", bad, 0, small_images=False)
