"""Every real-dataset config file loads, names a registered dataset, and pins DomainBed's 2020 backbone
(DomainBed's MNIST network for the 28x28 ones)."""

from __future__ import annotations

import pytest

from dagrad.config.files import PACKAGED_CONFIGS, shipped_configs
from dagrad.datasets import DATASETS
from dagrad.config.experiment import load_experiment

REAL = [n.split("/", 1)[1] for n in shipped_configs() if n.startswith("datasets/")
        and DATASETS.get(n.split("/", 1)[1]).load().layout != "embedded"]
SMALL = [n for n in REAL if DATASETS.get(n).load().small_images]


def test_there_is_a_config_for_every_real_dataset():
    real = [n for n in DATASETS.names() if DATASETS.get(n).load().layout != "embedded"]
    assert sorted(REAL) == sorted(real)
    assert all((PACKAGED_CONFIGS / "datasets" / f"{n}.yaml").is_file() for n in real)


@pytest.mark.parametrize("name", [n for n in REAL if n not in SMALL])
def test_config_loads_with_resnet50_imagenet_frozen_bn(name):
    exp = load_experiment([f"datasets/{name}"])
    assert exp.cfg.data.name == name and exp.cfg.data.image_size == 224
    assert exp.cfg.network.name == "resnet50"
    assert exp.network.options == {"pretrained": "imagenet", "freeze_bn": True, "dropout": 0.0}


def test_the_28x28_real_datasets_use_domainbeds_mnist_network():
    assert sorted(SMALL) == ["colored_fashion_mnist", "fashion_mnist", "rotated_fashion_mnist"]
    for name in SMALL:
        exp = load_experiment([f"datasets/{name}"])
        assert exp.cfg.data.name == name and exp.cfg.data.image_size is None
        assert exp.cfg.network.name == "mnist_cnn" and exp.hparams["lr"] == 1e-3 and exp.hparams["weight_decay"] == 0
