"""Fixtures of the fault-injection suite: the real CLI run in-process from an empty folder, failing
writes, and image trees (helpers in tests/helpers/faultinject.py)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Callable

import pytest

from dagrad.cli import main
from helpers.faultinject import Result, install_failing_writes


@pytest.fixture
def cli(capsys, monkeypatch, tmp_path):
    """cli(*argv) -> Result: `dagrad ARGV` run in-process from tmp_path (the real entry point)."""
    monkeypatch.chdir(tmp_path)

    def run(*argv: str) -> Result:
        capsys.readouterr()
        code = main(list(argv))
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run


@pytest.fixture
def failing_writes(monkeypatch) -> Callable[[Path, int], None]:
    """failing_writes(root, errno.ENOSPC | errno.EROFS): from now on, writes below `root` fail."""
    return lambda root, code: install_failing_writes(monkeypatch, root, code)


@pytest.fixture
def image_tree(tmp_path) -> Callable[..., Path]:
    """image_tree(envs={"a": {"cat": 2}}, name="tree") -> a folder-layout dataset under tmp_path."""
    from helpers.imagetree import write_tree

    def make(envs: dict, name: str = "tree") -> Path:
        root = tmp_path / name
        shutil.rmtree(root, ignore_errors=True)
        return write_tree(root, envs)

    return make
