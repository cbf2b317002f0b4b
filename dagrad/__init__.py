"""dagrad: domain generalization and adaptation baselines whose epochs can be swapped for GradSamp draws.

The Python API (`dagrad.train`, `load_run`, `load_runs`, `sweep`, `report`, `Run`, ...) lives in
`dagrad.api` and is imported on first use, so `import dagrad` stays cheap (the engine and the CLI read
`dagrad.version` only)."""

from dagrad.version import __version__  # noqa: E402
from dagrad.utils.threads import prefer_passive_wait  # noqa: E402 - before anything imports torch

prefer_passive_wait()

_API = ("train", "evaluate", "load_model", "load_run", "load_runs", "sweep", "report", "study", "check_config",
        "Run", "Sweep", "Report",
        "StudyReport", "DagradError", "ConfigError", "DataError", "CheckpointError", "RecordsError")
__all__ = ["__version__", *_API]


def __getattr__(name: str):
    """PEP 562: the API's names, imported from dagrad.api when first asked for."""
    if name in _API:
        import dagrad.api

        return getattr(dagrad.api, name)
    raise AttributeError(f"module 'dagrad' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_API))
