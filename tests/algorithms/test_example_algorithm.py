"""examples/my_algorithm.py: importing the file registers `my_mixup`, which then trains like a built-in."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from dagrad.algorithms import registry
from dagrad.utils.errors import ConfigError

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "my_algorithm.py"


@pytest.fixture(scope="module")
def example():
    spec = importlib.util.spec_from_file_location("dagrad_example_my_algorithm", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop(spec.name, None)
    registry.ALGORITHMS.unregister("my_mixup")  # leave the registry as other tests expect it


def test_importing_registers_the_name(example):
    assert "my_mixup" in registry.ALGORITHMS.names()
    assert registry.ALGORITHMS.load("my_mixup") is example.Mixup
    with pytest.raises(ConfigError, match="mixup_alpha: 0.0 is out of range; allowed: a finite number > 0"):
        registry.resolve_hparams("my_mixup", {"mixup_alpha": 0}, 0, small_images=True)
    hp = registry.resolve_hparams("my_mixup", {"mixup_alpha": 0.4}, 0, small_images=True)
    assert hp == {"lr": 1e-3, "weight_decay": 0.0, "mixup_alpha": 0.4}
    with pytest.raises(ConfigError, match="mixup_alpha"):
        registry.resolve_hparams("my_mixup", {"alpha": 0.4}, 0, small_images=True)


def test_it_trains_on_synthetic_data(example):
    torch.manual_seed(0)
    f = nn.Sequential(nn.Flatten(), nn.Linear(4, 8), nn.ReLU())
    f.n_outputs = 8
    model = example.Mixup(f, 2, 3, registry.resolve_hparams("my_mixup", {"lr": 1e-2}, 0, small_images=True))
    g = torch.Generator().manual_seed(1)
    envs = []
    for k in range(3):
        y = torch.randint(0, 2, (32,), generator=g)
        x = torch.randn(32, 4, generator=g) * 0.3 + (2 * y - 1).float()[:, None] + 0.2 * k
        envs.append((x, y))
    first = model.update(envs)["loss"]
    for _ in range(40):
        last = model.update(envs)["loss"]
    assert last < first
    x = torch.cat([e[0] for e in envs])
    y = torch.cat([e[1] for e in envs])
    assert (model.predict(x).argmax(1) == y).float().mean() > 0.9


def test_pairs_cover_every_environment_once(example):
    torch.manual_seed(3)
    mbs = [(torch.full((n, 1), float(k)), torch.zeros(n, dtype=torch.long)) for k, n in enumerate((4, 3, 5))]
    pairs = example.random_pairs(mbs)
    firsts = sorted(int(a[0][0, 0]) for a, _ in pairs)
    seconds = sorted(int(b[0][0, 0]) for _, b in pairs)
    assert firsts == seconds == [0, 1, 2]
    sizes = [len(x) for x, _ in mbs]
    for a, b in pairs:
        assert len(a[0]) == len(b[0]) == min(sizes[int(a[0][0, 0])], sizes[int(b[0][0, 0])])
