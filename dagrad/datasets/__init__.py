"""Datasets as environments (domains) with DomainBed's in/out splits; see specs.py and bundle.build."""

from dagrad.datasets.base import DomainSuite, Environment, TensorEnvironment
from dagrad.datasets.bundle import DataBundle, build
from dagrad.datasets.specs import DATASETS, DatasetSpec, build_suite, dataset_spec, register_dataset

__all__ = ["DATASETS", "DataBundle", "DatasetSpec", "DomainSuite", "Environment", "TensorEnvironment", "build",
           "build_suite", "dataset_spec", "register_dataset"]
