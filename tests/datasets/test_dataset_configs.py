"""Every real-dataset config file loads, names a registered dataset, and pins DomainBed's 2020 backbone."""

from __future__ import annotations

from pathlib import Path

import pytest

from dagrad.config import load_config
from dagrad.datasets.catalog import CATALOG

CONFIGS = sorted((Path(__file__).parents[2] / "configs" / "datasets").glob("*.yaml"))
REAL = [p for p in CONFIGS if p.stem in CATALOG]


def test_there_is_a_config_for_every_catalogued_dataset():
    assert sorted(p.stem for p in REAL) == sorted(CATALOG)


@pytest.mark.parametrize("path", REAL, ids=lambda p: p.stem)
def test_config_loads_with_resnet50_imagenet_frozen_bn(path):
    cfg = load_config([str(path)])
    assert cfg.data.name == path.stem and cfg.data.image_size == 224
    assert (cfg.network.name, cfg.network.pretrained, cfg.network.freeze_bn, cfg.network.dropout) == \
        ("resnet50", "imagenet", True, 0.0)
