"""RSC: the muting masks and loss against a numpy computation of Eqs. 1-5, DomainBed's draws."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers.domainbed_draws import assert_draws, featurizer

from dagrad.algorithms import build, resolve_hparams


def test_loss_equals_the_definition_with_numpy_percentiles():
    hp = resolve_hparams("rsc", {"rsc_f_drop_factor": 0.25, "rsc_b_drop_factor": 0.5}, 0, small_images=True)
    algo = build("rsc", hp, featurizer(6, 8), 3, 2)
    g = torch.Generator().manual_seed(6)
    batches = [(torch.randn(6, 6, generator=g), torch.randint(0, 3, (6,), generator=g)) for _ in range(2)]
    x, y = torch.cat([b[0] for b in batches]), torch.cat([b[1] for b in batches])
    with torch.no_grad():
        f = algo.featurizer(x)
        w = algo.classifier.weight
        grad = w[y].numpy()  # d(sum logits*onehot)/df for a linear classifier: the true class's weight row
        mask_f = (grad < np.percentile(grad, 75, axis=1, keepdims=True)).astype(np.float32)
        onehot = F.one_hot(y, 3).float()
        p = F.softmax(algo.classifier(f), 1)
        p_muted = F.softmax(algo.classifier(f * torch.tensor(mask_f)), 1)
        changes = ((p - p_muted) * onehot).sum(1).numpy()
        mask_b = (changes < np.percentile(changes, 50)).astype(np.float32)[:, None]
        mask = np.logical_or(mask_f, mask_b).astype(np.float32)
        expected = F.cross_entropy(algo.classifier(f * torch.tensor(mask)), y).item()
    assert 0 < mask_f.mean() < 1 and 0 < mask_b.mean() < 1
    assert algo.update(batches)["loss"].item() == pytest.approx(expected, rel=1e-6)


def test_draws_equal_domainbeds():
    assert_draws("rsc", "RotatedMNIST", 0, 0, {"rsc_f_drop_factor": 1 / 3, "rsc_b_drop_factor": 1 / 3})
    assert_draws("rsc", "RotatedMNIST", 1, 0, {"rsc_f_drop_factor": 0.4041248591083744,
                                               "rsc_b_drop_factor": 0.2581555339499306})
    assert_draws("rsc", "PACS", 2, 1, {"rsc_f_drop_factor": 0.28997079016683514,
                                       "rsc_b_drop_factor": 0.4017204629628293})
