"""Featurizers: a small GroupNorm CNN for the embedded digits, torchvision ResNets, any timm model."""

from dagrad.networks.featurizers import build_featurizer, check_network_name

__all__ = ["build_featurizer", "check_network_name"]
