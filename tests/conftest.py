"""Shared fixtures: every test gets its own config/data/cache dirs, so nothing touches the user's real files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="session", autouse=True)
def shared_numba_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One numba cache for the whole run, daemons started as subprocesses included: UMAP's kernels compile once
    (about a minute on 2 cores) instead of once per test's fresh cache dir."""
    folder = tmp_path_factory.mktemp("numba-cache")
    os.environ["NUMBA_CACHE_DIR"] = str(folder)
    return folder


@pytest.fixture(autouse=True)
def photomap_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    dirs = {name: tmp_path / f"photomap-{name}" for name in ("config", "data", "cache")}
    for name, path in dirs.items():
        monkeypatch.setenv(f"PHOTOMAP_{name.upper()}_DIR", str(path))
    return dirs


@pytest.fixture(scope="session")
def model_runner():  # type: ignore[no-untyped-def]
    """The default architecture with random weights, built once per test run (real cost, no download)."""
    from photomapd.model.runner import ModelRunner

    runner = ModelRunner("ViT-B-32", "none")
    runner.call_sync(lambda model: model)  # start the model process now, so a test's timing doesn't include it
    yield runner
    runner.close()
