"""Every shipped experiment config names its protocol; the DomainBed HEAD (2024) presets are the 2020
protocol with timm's AugMix ResNet-50 from a user's file and BatchNorm trained."""

from __future__ import annotations

import pytest

from dagrad.config.files import PACKAGED_CONFIGS, shipped_configs
from dagrad.config.experiment import load_experiment

EXPERIMENTS = [n for n in shipped_configs() if n.startswith("experiments/")]
DATASETS_2024 = ["pacs", "vlcs", "office_home", "terra_incognita", "domain_net"]


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_every_experiment_config_names_its_protocol_first(name):
    first = (PACKAGED_CONFIGS / f"{name}.yaml").read_text(encoding="utf-8").splitlines()[0]
    expected = ("DomainBed HEAD (2024" if name.endswith("_domainbed2024") else "SWAD (" if name.endswith("_swad")
                else "WILDS (" if "/wilds_" in name else "DomainBed 2020 (")
    assert first.startswith(f"# protocol: {expected}"), first


@pytest.mark.parametrize("dataset", DATASETS_2024)
def test_domainbed2024_preset_is_the_2020_protocol_with_heads_backbone(dataset):
    assert f"experiments/{dataset}_domainbed2024" in EXPERIMENTS
    head = load_experiment(f"experiments/{dataset}_domainbed2024")
    old = load_experiment(f"experiments/{dataset}")
    assert head.cfg.network.name == "timm:resnet50.ram_in1k"
    assert head.network.options["freeze_bn"] is False
    assert head.network.options["pretrained"] == "weights/resnet50.ram_in1k.pth"  # a file the user provides
    assert (head.cfg.epochs, head.cfg.steps_per_epoch, head.cfg.eval_mode, head.cfg.data.val_augment) == \
        (old.cfg.epochs, old.cfg.steps_per_epoch, old.cfg.eval_mode, old.cfg.data.val_augment)
    assert head.run_id != old.run_id
