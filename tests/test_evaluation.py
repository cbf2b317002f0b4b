"""Evaluation through one loader: the same accuracies and losses as one loader per split with host sums,
batches that never mix splits, one worker pool; digits workers started without forking the trainer."""

from __future__ import annotations

import os

import pytest
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from dagrad import datasets
from dagrad.datasets.bundle import collate
from dagrad.datasets.loading import START_METHOD
from dagrad.run.evaluation import evaluate
from dagrad.networks import build_featurizer


def _bundle(tiny_config, *overrides):
    cfg = tiny_config(*overrides)
    return datasets.build(cfg.data, cfg.trial_seed, cfg.eval_mode)


class _Model(torch.nn.Module):
    def __init__(self, bundle):
        super().__init__()
        torch.manual_seed(0)
        self.f = build_featurizer("digits_cnn", {"width": 8}, bundle.input_shape)
        self.head = torch.nn.Linear(self.f.n_outputs, bundle.num_classes)

    def predict(self, x):
        return self.head(self.f(x))


def _per_split_reference(model, bundle, batch_size):
    """What dagrad computed before: one loader per split, `.item()` after every batch."""
    metrics = {}
    model.eval()
    with torch.no_grad():
        for name, split in bundle.eval_splits().items():
            correct = n = 0
            loss = 0.0
            for x, y, _ in DataLoader(split, batch_size=batch_size, shuffle=False, collate_fn=collate):
                logits = model.predict(x)
                loss += F.cross_entropy(logits, y, reduction="sum").item()
                correct += (logits.argmax(1) == y).sum().item()
                n += len(y)
            metrics[f"{name}_acc"], metrics[f"{name}_loss"] = correct / n, loss / n
    return metrics


@pytest.mark.parametrize("batch_size", [7, 64, 1000])
def test_one_loader_gives_exactly_the_per_split_metrics(tiny_config, batch_size):
    bundle = _bundle(tiny_config, f"data.eval_batch_size={batch_size}")
    model = _Model(bundle)
    loader = bundle.eval_loader()
    metrics, _ = evaluate(model, loader, torch.device("cpu"))
    assert metrics == _per_split_reference(model, bundle, batch_size)


def test_batches_never_mix_splits_and_cover_each_split_once(tiny_config):
    bundle = _bundle(tiny_config, "data.eval_batch_size=50", "eval_mode=fast")
    loader = bundle.eval_loader()
    assert "env0_in" not in loader.names and "env5_in" in loader.names  # fast: no training envs' `in`
    seen = {name: 0 for name in loader.names}
    for k, (x, y, _) in loader:
        seen[loader.names[k]] += len(y)
        assert len(y) <= 50
    assert seen == {name: len(bundle.splits[name]) for name in loader.names}
    assert loader.owners == sorted(loader.owners)  # split after split, never interleaved


def test_default_eval_batch_is_domainbeds():
    from dagrad.config.schema import DataConfig

    assert DataConfig().eval_batch_size == 64


@pytest.mark.slow
def test_workers_are_one_pool_started_without_forking_the_trainer(tiny_config, tmp_path, monkeypatch):
    """8 splits share one worker pool; neither training nor evaluation forks this (threaded) process."""
    from dagrad.run.engine import Trainer

    def no_fork():
        raise AssertionError("the training process forked (Python >= 3.12 warns: it may deadlock)")

    trainer = Trainer(tiny_config("data.num_workers=2", "epochs=1", "steps_per_epoch=2"), tmp_path / "r",
                      progress=False)
    assert trainer.eval_loader.loader.num_workers == 2 and len(trainer.eval_loader.names) == 12
    monkeypatch.setattr(os, "fork", no_fork)
    trainer.run()
    assert trainer.eval_loader.loader.multiprocessing_context.get_start_method() == START_METHOD == "forkserver"


@pytest.mark.slow
def test_an_unguarded_script_with_workers_gets_one_clear_line(tmp_path):
    """Workers start through a fork server, which runs the main script again: say what to do about it."""
    import subprocess
    import sys

    script = tmp_path / "unguarded.py"
    script.write_text("import sys\nfrom dagrad.config.experiment import load_experiment\nfrom dagrad.run.training import train_run\n"
                      "exp = load_experiment(None, ['data.image_size=12', 'network.options.width=8', "
                      "'data.batch_size=8', 'epochs=1', 'steps_per_epoch=1', 'data.num_workers=1'])\n"
                      "train_run(exp, sys.argv[1], progress=False)\n")
    done = subprocess.run([sys.executable, str(script), str(tmp_path / "run")], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode != 0
    assert 'must guard its entry point with `if __name__ == "__main__":`' in done.stderr
