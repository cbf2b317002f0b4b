"""The cached index, `dagrad data check`, unreadable files while loading, and a few ERM steps."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from helpers import imagetree

from dagrad.config.schema import DataConfig, ExperimentConfig, NetworkConfig
from dagrad.datasets import build
from dagrad.datasets.check import check
from dagrad.datasets.index import index_tree
from dagrad.utils.errors import DataError


PACS_ENVS = ["art_painting", "cartoon", "photo", "sketch"]


def _pacs(root: Path, per_class: int = 3) -> Path:
    imagetree.write_tree(root / "PACS", {e: {"dog": per_class, "horse": per_class} for e in PACS_ENVS})
    imagetree.age(root)
    return root


def test_second_index_comes_from_cache_without_listing(tmp_path, monkeypatch):
    _pacs(tmp_path)
    first = index_tree(tmp_path / "PACS", PACS_ENVS)
    assert not first.from_cache

    def refuse(*args, **kwargs):
        raise AssertionError("os.scandir called although the cache is valid")

    monkeypatch.setattr(os, "scandir", refuse)
    second = index_tree(tmp_path / "PACS", PACS_ENVS)
    assert second.from_cache and second.dirs == first.dirs and second.blob == first.blob
    assert np.array_equal(second.offsets, first.offsets) and second.count("cartoon") == 6
    files, labels = second.files("cartoon", {"dog": 0, "horse": 1})
    assert [files.relpath(k) for k in range(6)] == [f"{c}/img{k}.png" for c in ("dog", "horse") for k in range(3)]
    assert labels.tolist() == [0, 0, 0, 1, 1, 1]
    cfg = DataConfig(name="pacs", root=str(tmp_path), test_envs=[0], image_size=16)
    assert build(cfg, 0).suite.notes["index_from_cache"] is True


def test_cache_invalidated_when_a_class_directory_changes(tmp_path):
    _pacs(tmp_path)
    cfg = DataConfig(name="pacs", root=str(tmp_path), test_envs=[0], image_size=16)
    assert len(build(cfg, 0).suite.environments[1]) == 6
    imagetree.write_image(tmp_path / "PACS/cartoon/horse/new.png")
    suite = build(cfg, 0).suite
    assert suite.notes["index_from_cache"] is False and len(suite.environments[1]) == 7
    (tmp_path / "PACS/cartoon/horse/new.png").unlink()
    assert len(build(cfg, 0).suite.environments[1]) == 6


def test_a_freshly_written_tree_is_not_trusted_from_cache(tmp_path):
    imagetree.write_tree(tmp_path / "t", {"a": {"x": 1}, "b": {"x": 1}})
    index_tree(tmp_path / "t")
    assert not index_tree(tmp_path / "t").from_cache  # modified within the racy window: rescanned


def test_check_reports_missing_environment_zero_byte_and_corrupt_files(tmp_path):
    imagetree.write_tree(tmp_path / "PACS", {e: {"dog": 2} for e in PACS_ENVS[:3]})
    (tmp_path / "PACS/cartoon/dog/empty.png").write_bytes(b"")
    (tmp_path / "PACS/photo/dog/broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    report = check("pacs", tmp_path)
    assert not report.ok
    assert report.missing_environments == ["sketch"]
    by_name = {e.name: e for e in report.environments}
    assert by_name["art_painting"].found == 2 and by_name["art_painting"].expected == 2048
    assert by_name["cartoon"].zero_byte == [str(tmp_path / "PACS/cartoon/dog/empty.png")]
    assert [p for p, _ in by_name["photo"].unreadable] == [str(tmp_path / "PACS/photo/dog/broken.jpg")]
    text = report.format()
    assert "sketch: environment missing" in text and "zero-byte file" in text and "broken.jpg" in text
    assert "2 images found, expected 2,048" in text


def test_check_ok_and_unknown_counts(tmp_path):
    imagetree.write_tree(tmp_path / "VLCS", {e: {c: 1 for c in "abcde"} for e in
                                             ["Caltech101", "LabelMe", "SUN09", "VOC2007"]})
    report = check("vlcs", tmp_path)
    assert report.ok, report.format()
    assert "expected unknown" in report.format()
    assert not check("vlcs", tmp_path / "nowhere").ok


def _corrupt_build(tmp_path: Path, skip: bool):
    _pacs(tmp_path, per_class=2)
    bad = tmp_path / "PACS/cartoon/dog/img0.png"
    bad.write_bytes(b"garbage")
    cfg = DataConfig(name="pacs", root=str(tmp_path), test_envs=[0], image_size=16, batch_size=4,
                     skip_corrupt=skip, holdout_fraction=0.25)
    return build(cfg, 0), bad


def test_unreadable_image_while_loading_names_the_file(tmp_path):
    bundle, bad = _corrupt_build(tmp_path, skip=False)
    split = bundle.splits["env1_in"] if 0 in bundle.splits["env1_in"].indices else bundle.splits["env1_out"]
    k = int(np.flatnonzero(split.indices == 0)[0])
    with pytest.raises(DataError, match=str(bad)):
        split[k]


def test_skip_corrupt_counts_the_skipped_images(tmp_path):
    bundle, _ = _corrupt_build(tmp_path, skip=True)
    loader = bundle.eval_loader()
    skipped = {name: 0 for name in loader.names}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for k, (x, y, s) in loader:
            skipped[loader.names[k]] += s
            assert x.shape[1:] == (3, 16, 16)
    assert skipped["env1_in"] + skipped["env1_out"] == 1 and sum(skipped.values()) == 1


def test_erm_trains_a_few_steps_on_a_tiny_pacs_tree(tmp_path):
    from dagrad.algorithms import build as build_algorithm
    from dagrad.networks import build_featurizer

    _pacs(tmp_path, per_class=4)
    cfg = ExperimentConfig(data=DataConfig(name="pacs", root=str(tmp_path), test_envs=[3], image_size=32,
                                           batch_size=4),
                           network=NetworkConfig(name="resnet18"))
    bundle = build(cfg.data, trial_seed=0)
    torch.manual_seed(0)
    featurizer = build_featurizer("resnet18", {"pretrained": None, "freeze_bn": True, "dropout": 0.0}, bundle.input_shape)
    algorithm = build_algorithm("erm", {"lr": 5e-5, "weight_decay": 0.0}, featurizer, bundle.num_classes,
                                len(bundle.train_envs))
    losses = []
    for step, (minibatches, _, skipped) in zip(range(3), bundle.training_loaders(steps=3, seed=0).epoch(0)):
        assert len(minibatches) == 3 and minibatches[0][0].shape == (4, 3, 32, 32) and skipped == 0
        losses.append(algorithm.update(minibatches)["loss"])
    assert len(losses) == 3 and all(np.isfinite(losses))
    logits = algorithm.predict(bundle.splits["env3_in"][0][0].unsqueeze(0))
    assert logits.shape == (1, 2)
