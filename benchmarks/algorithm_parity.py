"""dagrad's algorithm updates against a local copy of DomainBed's, on identical weights and batches.

For each algorithm: DomainBed's class is built for RotatedMNIST-shaped inputs (2 x 28 x 28, its MNIST
CNN, 10 classes, 3 training environments) with its default hyperparameters plus the overrides below;
dagrad's is built around a copy of the same featurizer, and every parameter and floating buffer is copied
across in registration order (shapes checked). Then both take `--updates` updates on the same random
minibatches, the global torch and numpy generators seeded identically before each update (both draw in
the same order), and the largest absolute difference over all parameters and floating buffers (BatchNorm statistics,
GroupDRO's q, MTL's embeddings) is printed, beside the largest change of any of them over the updates
(so a zero difference is not a model that never moved).

The DomainBed copy is read from `--domainbed` (a folder holding the `domainbed` package); nothing of it
ships with dagrad.

    python benchmarks/algorithm_parity.py --domainbed /path/to/DomainBed [--updates 6] [--algorithms IRM,MMD]
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import importlib
import sys
from typing import Iterator

import numpy as np
import torch

from dagrad.algorithms import build, resolve_hparams

# short warm-ups so the annealing switch and the Adam reset fall inside the compared updates
OVERRIDES = {
    "IRM": {"irm_penalty_anneal_iters": 2},
    "VREx": {"vrex_penalty_anneal_iters": 2},
    "DANN": {"grad_penalty": 0.1},
    "CDANN": {"grad_penalty": 0.1},
    "IB_ERM": {"ib_penalty_anneal_iters": 2},
    "IB_IRM": {"irm_penalty_anneal_iters": 2, "ib_penalty_anneal_iters": 3},
    "ANDMask": {"tau": 0.6},
    "SANDMask": {"tau": 0.5, "k": 1e-4},
    "EQRM": {"eqrm_burnin_iters": 2, "eqrm_lr": 1e-4},
    "TRM": {"iters": 2},
    "ERMPlusPlus": {"linear_steps": 2},
    "Fishr": {"penalty_anneal_iters": 2, "lambda": 10.0},
    "RDM": {"rdm_penalty_anneal_iters": 2, "rdm_lr": 1e-4},
    "Transfer": {"delta": 0.05, "d_steps_per_g": 3},
}
ALGORITHMS = ["ERM", "CORAL", "DANN", "IRM", "GroupDRO", "Mixup", "VREx", "MMD", "MTL", "MLDG", "CDANN", "SagNet",
              "RSC", "ARM", "SD", "ANDMask", "IB_ERM", "IB_IRM", "CausIRL_CORAL", "CausIRL_MMD", "Fish",
              "SelfReg", "SANDMask", "IGA", "CAD", "CondCAD", "EQRM", "TRM", "Transfer", "RDM", "URM", "ADRMX", "Fishr", "ERMPlusPlus"]
SHAPE, CLASSES, ENVS, BATCH = (2, 28, 28), 10, 3, 16


def batches(updates: int) -> list[list[tuple[torch.Tensor, torch.Tensor]]]:
    g = torch.Generator().manual_seed(1234)
    return [[(torch.randn(BATCH, *SHAPE, generator=g), torch.randint(0, CLASSES, (BATCH,), generator=g))
             for _ in range(ENVS)] for _ in range(updates)]


def copy_state(source: torch.nn.Module, target: torch.nn.Module) -> None:
    """Every parameter, then every floating buffer, of `source` into `target`, matched by registration order."""
    pairs = list(zip(source.parameters(), target.parameters()))
    if len(list(source.parameters())) != len(list(target.parameters())):
        raise SystemExit("parameter counts differ")
    pairs += [(a, b) for a, b in zip([b for b in source.buffers() if b.is_floating_point() and b.numel()],
                                     [b for b in target.buffers() if b.is_floating_point() and b.numel()])]
    with torch.no_grad():
        for a, b in pairs:
            if a.shape != b.shape:
                raise SystemExit(f"shapes differ: {tuple(a.shape)} vs {tuple(b.shape)}")
            b.copy_(a)


def compare(db, name: str, updates: int) -> tuple[float, float]:
    """(largest |dagrad - DomainBed| after the updates, largest |change| of dagrad's tensors over them)."""
    hp = db.hparams_registry.default_hparams(name, "RotatedMNIST")
    hp.update(OVERRIDES.get(name, {}), batch_size=BATCH)
    torch.manual_seed(0)
    theirs = db.algorithms.get_algorithm_class(name)(SHAPE, CLASSES, ENVS, hp)
    ours_hp = resolve_hparams(name.lower(), OVERRIDES.get(name, {}), 0, small_images=True)
    featurizer = copy.deepcopy(_featurizer(theirs))
    if hasattr(featurizer, "activation"):  # URM sets DomainBed's output activation; dagrad's URM adds its own
        featurizer.activation = torch.nn.Identity()
    ours = build(name.lower(), ours_hp, featurizer, CLASSES, ENVS, input_shape=SHAPE)
    copy_state(_compared(theirs), _compared(ours))
    if name == "ERMPlusPlus":  # the moving average starts within the compared updates
        theirs.sma_start_iter = ours.sma_start = 3
    start = [t.detach().clone() for t in _tensors(_compared(ours))]
    for k, minibatches in enumerate(batches(updates)):
        for algorithm in (theirs, ours):
            torch.manual_seed(100 + k)
            np.random.seed(100 + k)
            with _shim(name if algorithm is theirs else ""):
                algorithm.update([(x.clone(), y.clone()) for x, y in minibatches])
    moved = max((a - b).abs().max().item() for a, b in zip(start, _tensors(_compared(ours))))
    return max((a - b).abs().max().item() for a, b in zip(_tensors(_compared(theirs)), _tensors(_compared(ours)))), moved


@contextlib.contextmanager
def _shim(name: str) -> Iterator[None]:
    """Fishr: DomainBed's per-example gradients call backward(inputs=<classifier parameters>), which on
    current torch never reaches the classifier's input, so BackPACK's hooks do not fire and its class fails.
    Inside its update, backward runs without `inputs` (the featurizer's extra gradients are cleared by its
    next zero_grad before they are used), which computes the same per-example gradients."""
    if name != "Fishr":
        yield
        return
    original = torch.Tensor.backward

    def backward(self, *args, **kwargs):
        kwargs.pop("inputs", None)
        return original(self, *args, **kwargs)

    torch.Tensor.backward = backward
    try:
        yield
    finally:
        torch.Tensor.backward = original


def _tensors(m: torch.nn.Module) -> list[torch.Tensor]:
    return list(m.parameters()) + [b for b in m.buffers() if b.is_floating_point() and b.numel()]


class _Held(torch.nn.Module):
    """Modules DomainBed keeps outside its registered state (TRM's heads in a plain list), with an extra
    tensor (TRM's alpha, a plain attribute there) held as a buffer, so both sides compare alike."""

    def __init__(self, modules: list[torch.nn.Module], extra: torch.Tensor):
        super().__init__()
        self.held = torch.nn.ModuleList(modules)
        self.register_buffer("extra", extra, persistent=False)


def _compared(algorithm: torch.nn.Module) -> torch.nn.Module:
    """What is copied and compared: the algorithm; for Fish its network (its inner one is transient); for
    TRM featurizer, classifier, the per-environment heads and alpha."""
    name = type(algorithm).__name__
    if name == "Fish":
        return algorithm.network
    if name == "TRM":
        heads = getattr(algorithm, "heads", None) or algorithm.clist
        return _Held([algorithm.featurizer, algorithm.classifier, *heads], algorithm.alpha)
    return algorithm


def _featurizer(algorithm: torch.nn.Module) -> torch.nn.Module:
    if type(algorithm).__name__ == "Fish":
        return algorithm.network.net[0]
    for name in ("featurizer", "featurizer_label", "network_f"):  # ADRMX: its label featurizer
        if hasattr(algorithm, name):
            return getattr(algorithm, name)
    raise SystemExit(f"no featurizer found in {type(algorithm).__name__}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--domainbed", required=True, help="folder that holds DomainBed's `domainbed` package")
    parser.add_argument("--updates", type=int, default=6)
    parser.add_argument("--algorithms", default=",".join(ALGORITHMS))
    args = parser.parse_args()
    sys.path.insert(0, args.domainbed)
    if not torch.cuda.is_available():  # TRM places its heads with .cuda(); on a CPU-only machine keep them here
        torch.nn.Module.cuda = lambda self, *a, **k: self
        torch.Tensor.cuda = lambda self, *a, **k: self
    db = argparse.Namespace(algorithms=importlib.import_module("domainbed.algorithms"),
                            hparams_registry=importlib.import_module("domainbed.hparams_registry"))
    torch.set_num_threads(1)
    print(f"{'algorithm':<14} {'updates':>7} {'max |diff|':>12} {'max |moved|':>12}")
    for name in args.algorithms.split(","):
        diff, moved = compare(db, name, args.updates)
        print(f"{name:<14} {args.updates:>7} {diff:>12.3e} {moved:>12.3e}", flush=True)


if __name__ == "__main__":
    main()
