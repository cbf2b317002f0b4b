"""Dataset tests write their index caches into a temporary folder, never into the user's cache."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("DAGRAD_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
