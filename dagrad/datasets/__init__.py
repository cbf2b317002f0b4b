"""Datasets as environments (domains) with DomainBed's in/out splits; see bundle.build."""

from dagrad.datasets.base import DomainSuite, Environment, TensorEnvironment
from dagrad.datasets.bundle import DataBundle, build
from dagrad.datasets.registry import check_name, names, register

__all__ = ["DataBundle", "DomainSuite", "Environment", "TensorEnvironment", "build", "check_name", "names", "register"]
