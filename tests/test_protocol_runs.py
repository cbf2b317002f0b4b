"""What a run records and reads under the protocol settings: the uda split and which algorithms get target
batches, the guard's own slice, and the random search's values."""

from __future__ import annotations

from dagrad.run.engine import Trainer
from dagrad.run.parts import GUARD_EXAMPLES_PER_ENV
from dagrad.run.training import train_run
from dagrad.records.files import read_records, split_run


def header_of(path):
    return split_run(read_records(path))[0]


def test_only_algorithms_that_use_target_inputs_get_target_batches(tiny_config, tmp_path):
    da = ("data.setting=da", "data.uda_holdout_fraction=0.25", "epochs=1")
    erm = Trainer(tiny_config(*da), tmp_path / "erm", progress=False)
    coral = Trainer(tiny_config(*da, "algorithm.name=coral"), tmp_path / "coral", progress=False)
    assert len(erm.stream.loaders) == 5 and erm.stream.unlabelled_splits == []  # ERM ignores them: none read
    assert len(coral.stream.loaders) == 6 and coral.stream.unlabelled_splits == ["env5_uda"]
    dann = Trainer(tiny_config(*da, "algorithm.name=dann"), tmp_path / "dann", progress=False)
    assert dann.stream.unlabelled_splits == []
    header = header_of(coral.run())
    sizes = header["data"]["split_sizes"]
    n_in = len(coral.data.suite.environments[5]) - int(len(coral.data.suite.environments[5]) * 0.2)
    assert sizes["env5_uda"] == int(n_in * 0.25) and sizes["env5_in"] == n_in - int(n_in * 0.25)
    assert header["data"]["unlabelled_splits"] == ["env5_uda"] and header["data"]["uda"]["holdout_fraction"] == 0.25
    assert header_of(erm.run())["data"]["unlabelled_splits"] == []


def test_the_guard_gets_its_own_slice_recorded_in_the_header(tiny_config, tmp_path):
    plain = header_of(train_run(tiny_config("epochs=1"), tmp_path / "plain", progress=False))
    guarded = header_of(train_run(tiny_config("epochs=2", "gradsamp.sampler=skip", "gradsamp.guard=true",
                                          "gradsamp.schedule_options.start=1"), tmp_path / "guard", progress=False))
    guard = guarded["data"]["guard"]
    assert guard["per_env"] == GUARD_EXAMPLES_PER_ENV and guard["seed"] == "seed_hash(trial_seed, env, 'guard')"
    assert guard["sizes"] == {f"env{i}": GUARD_EXAMPLES_PER_ENV for i in range(5)}
    for i in range(5):  # carved out of the training `in` splits; `out` (what selection uses) is untouched
        assert guarded["data"]["split_sizes"][f"env{i}_in"] == plain["data"]["split_sizes"][f"env{i}_in"] - 32
        assert guarded["data"]["split_sizes"][f"env{i}_out"] == plain["data"]["split_sizes"][f"env{i}_out"]
    assert "guard" not in plain["data"]


def test_header_records_the_searched_values(tiny_config, tmp_path):
    header = header_of(train_run(tiny_config("epochs=1", "data.batch_size=null", "algorithm.hparams_seed=2"),
                             tmp_path / "run", progress=False))
    assert header["searched"] == {"data.batch_size": header["data"]["batch_size"]}
    assert 8 <= header["data"]["batch_size"] < 512 and header["resolved"]["data"]["batch_size"] == "search"
