"""Trained models kept by runs, and what uses them: loading, scoring (evaluate), predict, export."""

from dagrad.models.kept import KeptModels, read_manifest
from dagrad.models.loading import LoadedModel, Predictor, load_model

__all__ = ["KeptModels", "LoadedModel", "Predictor", "load_model", "read_manifest"]
