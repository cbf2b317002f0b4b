"""Featurizers: a small GroupNorm CNN for the embedded digits, torchvision ResNets, any timm model."""

from dagrad.networks.registry import NETWORKS, build_featurizer, network_entry, network_names, resolve_network

__all__ = ["NETWORKS", "build_featurizer", "network_entry", "network_names", "resolve_network"]
