"""The uda split, the DA target inputs and the guard slice, against DomainBed's train.py re-typed here:

    out, in_ = split_dataset(env, int(len(env) * holdout_fraction), seed_hash(trial_seed, env_i))
    if env_i in test_envs:
        uda, in_ = split_dataset(in_, int(len(in_) * uda_holdout_fraction), seed_hash(trial_seed, env_i))

with split_dataset(d, n, seed): keys = list(range(len(d))); RandomState(seed).shuffle(keys); return
d[keys[:n]], d[keys[n:]] (a split of a split indexes the first split's shuffled keys).
"""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from helpers import imagetree

from dagrad.config.schema import DataConfig
from dagrad.datasets import build
from dagrad.utils.errors import ConfigError


def sh(*args) -> int:
    return int(hashlib.md5(str(args).encode("utf-8")).hexdigest(), 16) % (2 ** 31)


def split_dataset(keys: list, n: int, seed: int) -> tuple[list, list]:
    order = list(range(len(keys)))
    np.random.RandomState(seed).shuffle(order)
    return [keys[k] for k in order[:n]], [keys[k] for k in order[n:]]


def domainbed_splits(n_env: int, trial: int, env_i: int, holdout: float, uda: float) -> tuple[set, set, set]:
    out, in_ = split_dataset(list(range(n_env)), int(n_env * holdout), sh(trial, env_i))
    uda_keys, in_ = split_dataset(in_, int(len(in_) * uda), sh(trial, env_i))
    return set(in_), set(out), set(uda_keys)


@pytest.mark.parametrize("trial", [0, 2])
def test_uda_split_is_domainbeds(trial):
    bundle = build(DataConfig(image_size=12, test_envs=[1, 5], uda_holdout_fraction=0.3), trial)
    for env in (1, 5):
        n = len(bundle.suite.environments[env])
        in_, out, uda = domainbed_splits(n, trial, env, 0.2, 0.3)
        assert set(bundle.splits[f"env{env}_in"].indices.tolist()) == in_
        assert set(bundle.splits[f"env{env}_out"].indices.tolist()) == out
        assert set(bundle.splits[f"env{env}_uda"].indices.tolist()) == uda
        assert len(uda) == int((n - int(n * 0.2)) * 0.3) and not (uda & in_) and not (uda & out)
    assert "env0_uda" not in bundle.splits  # training environments keep their whole `in` split
    assert bundle.info["split_sizes"]["env5_uda"] == len(bundle.splits["env5_uda"])
    assert bundle.info["uda"]["holdout_fraction"] == 0.3


def test_dg_runs_carve_the_same_uda_split_so_they_score_on_the_same_examples():
    dg = build(DataConfig(image_size=12, uda_holdout_fraction=0.2), 0)
    da = build(DataConfig(image_size=12, setting="da", uda_holdout_fraction=0.2), 0)
    assert np.array_equal(dg.splits["env5_in"].indices, da.splits["env5_in"].indices)
    assert dg.unlabelled_splits() == [] and da.unlabelled_splits() == ["env5_uda"]
    plain = build(DataConfig(image_size=12), 0)  # fraction 0 (DomainBed's default): no uda split
    assert "env5_uda" not in plain.splits and len(plain.splits["env5_in"]) == len(plain.suite.environments[5]) - \
        int(len(plain.suite.environments[5]) * 0.2)


def test_da_settings_are_checked():
    with pytest.raises(ConfigError, match="needs unlabelled target inputs"):
        build(DataConfig(image_size=12, setting="da"), 0)
    with pytest.raises(ConfigError, match="transductive DA protocol adapts to and scores on the whole"):
        build(DataConfig(image_size=12, setting="da", da_protocol="transductive", uda_holdout_fraction=0.2), 0)


def _tree(tmp_path):
    envs = {e: {"a": 6, "b": 6} for e in ("art_painting", "cartoon", "photo", "sketch")}
    imagetree.write_tree(tmp_path / "PACS", envs)
    return tmp_path


def test_target_inputs_get_the_test_environments_plain_transform(tmp_path):
    root = _tree(tmp_path)
    da = build(DataConfig(name="pacs", root=str(root), test_envs=[0], image_size=16, batch_size=2, setting="da",
                          uda_holdout_fraction=0.25), 0)
    suite = da.suite
    assert da.splits["env1_in"].transform is suite.train_transform  # training environments are augmented
    for name in ("env0_in", "env0_out", "env0_uda", "env1_out"):
        assert da.splits[name].transform is suite.eval_transform
    assert da._unlabelled_view("env0_uda").transform is suite.eval_transform  # DomainBed: plain
    stream = da.training_loaders(1, 0)
    _, unlabelled, _ = next(stream.epoch(0))
    assert stream.unlabelled_splits == ["env0_uda"] and unlabelled[0].shape == (2, 3, 16, 16)
    # transductive (Dassl, TLlib): target inputs are the whole `in` split, augmented like training inputs
    tr = build(DataConfig(name="pacs", root=str(root), test_envs=[0], image_size=16, batch_size=2, setting="da",
                          da_protocol="transductive"), 0)
    assert tr.unlabelled_splits() == ["env0_in"] and "env0_uda" not in tr.splits
    assert tr._unlabelled_view("env0_in").transform is tr.suite.train_transform
    assert tr.splits["env0_in"].transform is tr.suite.eval_transform  # scored on the plain images


def test_guard_slice_is_carved_from_training_in_splits_and_recorded():
    cfg = DataConfig(image_size=12)
    plain = build(cfg, 0)
    bundle = build(cfg, 0, guard_per_env=8)
    assert sorted(bundle.guard) == bundle.train_envs == [0, 1, 2, 3, 4]
    for i in bundle.train_envs:
        full_in = plain.splits[f"env{i}_in"].indices  # sorted, as the guard is cut from it
        order = np.random.RandomState(sh(0, i, "guard")).permutation(len(full_in))
        expected = np.sort(full_in[order[:8]])
        assert np.array_equal(bundle.guard[i].indices, expected)
        assert np.array_equal(bundle.splits[f"env{i}_in"].indices, np.setdiff1d(full_in, expected))
        assert np.array_equal(bundle.splits[f"env{i}_out"].indices, plain.splits[f"env{i}_out"].indices)
    assert np.array_equal(bundle.splits["env5_in"].indices, plain.splits["env5_in"].indices)
    assert bundle.info["guard"]["sizes"] == {f"env{i}": 8 for i in range(5)}
    assert bundle.info["guard"]["per_env"] == 8 and bundle.info["guard"]["trial_seed"] == 0
    x, y = bundle.fixed_batch(8)
    assert x.shape[0] == 40 and y.tolist() == [int(bundle.suite.environments[i].labels[k])
                                               for i in range(5) for k in bundle.guard[i].indices]
    other = build(cfg, 1, guard_per_env=8)
    assert not np.array_equal(other.guard[0].indices, bundle.guard[0].indices)
    with pytest.raises(ConfigError, match="without a guard slice"):
        plain.fixed_batch(8)
