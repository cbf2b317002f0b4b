"""MTL: the embeddings' moving average, the noise DomainBed feeds the classifier, the summed loss,
embeddings kept out of sampled epochs, DomainBed's draws."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from helpers.domainbed_draws import assert_draws, featurizer

from dagrad.algorithms import build, resolve_hparams
from dagrad.gradsamp.history import floating_buffers


def test_embedding_moves_by_the_ema_rate_and_the_classifier_reads_noise():
    hp = resolve_hparams("mtl", {"mtl_ema": 0.9}, 0, small_images=True)
    algo = build("mtl", hp, featurizer(), 3, 2)
    x = torch.randn(5, 6)
    algo.embeddings[1] = torch.tensor([1.0, 2.0, 3.0, 4.0])
    with torch.no_grad():
        mean = algo.featurizer(x).mean(0)
        torch.manual_seed(0)
        out = algo.predict(x, env=1)
        torch.manual_seed(0)
        noise = torch.randn(5, 4)
        expected = algo.classifier(torch.cat((algo.featurizer(x), noise), 1))
    assert algo.embeddings[1].tolist() == pytest.approx((0.9 * mean + 0.1 * torch.tensor([1.0, 2, 3, 4])).tolist())
    assert torch.equal(out, expected)
    assert algo.embeddings[0].tolist() == [0.0] * 4


def test_loss_is_the_sum_over_environments_and_embeddings_are_not_drawn():
    algo = build("mtl", resolve_hparams("mtl", {}, 0, small_images=True), featurizer(), 3, 2)
    batches = [(torch.randn(4, 6), torch.randint(0, 3, (4,))) for _ in range(2)]
    torch.manual_seed(1)
    with torch.no_grad():
        expected = sum(F.cross_entropy(algo.predict(x, None), y).item() for x, y in batches)
    torch.manual_seed(1)
    assert algo.update(batches)["loss"].item() == pytest.approx(expected, rel=1e-5)
    assert "embeddings" not in floating_buffers(algo) and "embeddings" in algo.state_dict()


def test_draws_equal_domainbeds():
    assert_draws("mtl", "RotatedMNIST", 0, 0, {"mtl_ema": 0.99})
    assert_draws("mtl", "RotatedMNIST", 1, 0, {"mtl_ema": 0.99})
    assert_draws("mtl", "PACS", 2, 1, {"mtl_ema": 0.99, "lr": 0.0002692684204277505})
