"""Shell text from a sweep file runs only with the user's consent.

A sweep's `launcher:` block may hold shell lines (`setup:`, run before every task), a `python:`
command the nodes run, and sbatch options (`additional:`) whose line breaks would add script lines. Sweep files travel like any config, so this text is code from a file: it runs
only with the consent plugins need, `--allow-plugins` (the API's `allow_plugins=True`). Without it the
sweep stops with one line before anything is written or submitted. Options given through the API's
`launcher_options=` are the caller's own code and need no consent."""

from __future__ import annotations

from typing import Any, Mapping

from dagrad.utils.errors import ConfigError, clip
from dagrad.plugins import PluginConsent

SHELL_OPTIONS = ("setup", "python")  # launcher options whose text a shell runs


def check_shell_consent(block: Mapping[str, Any], consent: PluginConsent) -> None:
    """A ConfigError naming the first shell-bearing option of a sweep file's launcher block, unless the
    user consented to running code from config files."""
    if consent.allow_all:
        return
    additional = block.get("additional")
    if isinstance(additional, Mapping):  # a line break in an sbatch option would start a line of the script
        for name, value in additional.items():
            if any(c in str(name) + str(value) for c in "\n\r"):
                raise ConfigError(f"launcher.additional.{clip(str(name))[1:-1]}: a line break in an sbatch option adds "
                                  f"shell lines to the job script, which runs code; run it only if you trust the "
                                  f"file, with --allow-plugins (API: allow_plugins=True)")
    for key in SHELL_OPTIONS:
        value = block.get(key)
        if value not in (None, [], ""):
            raise ConfigError(f"launcher.{key}: the sweep file gives shell text to run ({clip(value)}), which runs "
                              f"code; run it only if you trust the file, with --allow-plugins (the consent plugins "
                              f"need; API: allow_plugins=True)")
