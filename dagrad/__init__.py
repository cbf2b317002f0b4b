"""dagrad: domain generalization and adaptation baselines whose epochs can be swapped for GradSamp draws."""

__version__ = "0.1.0"
