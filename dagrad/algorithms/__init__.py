"""Algorithms: one file each, registered by name with their hyperparameters (see registry.py).

Importing this package registers the built-ins: ERM, CORAL, DANN (DomainBed's DG form), DANN-GRL and the
rest of DomainBed's catalog that dagrad has (one module each; see docs/algorithms-parity.md)."""

from dagrad.algorithms.base import Algorithm, FeaturizerClassifier
from dagrad.algorithms.registry import ALGORITHMS, build, register, resolve_hparams
from dagrad.algorithms import (  # noqa: F401,E402 - register the built-ins
    adrmx, andmask, arm, cad, causirl_coral, causirl_mmd, cdann, condcad, coral, dann, dann_grl, eqrm, erm, ermplusplus, fedsr, fish,
    fishr, groupdro, ib_erm,
    ib_irm, iga, irm,
    mixup, mldg, mmd, mtl, rdm, rsc, sagnet, sandmask, sd, selfreg, transfer, trm, urm, vrex,
)

__all__ = ["ALGORITHMS", "Algorithm", "FeaturizerClassifier", "build", "register", "resolve_hparams"]
