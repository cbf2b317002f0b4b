"""The error a tracker gives when its optional package is missing (its own module, so the trackers and
the package that builds them do not import each other)."""

from __future__ import annotations

from dagrad.utils.errors import ConfigError

EXTRA = "pip install 'dagrad[tracking]'"


def missing_package(setting: str, package: str) -> ConfigError:
    return ConfigError(f"{setting} needs the {package} package, which is not installed: {EXTRA} "
                       f"(or leave {setting} off)")
