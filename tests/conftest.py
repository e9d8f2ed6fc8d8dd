"""Shared fixtures: one stub model directory per test session (cheap to build, read-only in tests)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.helpers_runtime import write_stub_model_dir


@pytest.fixture(scope="session")
def stub_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_stub_model_dir(tmp_path_factory.mktemp("stub") / "model")


@pytest.fixture(scope="session")
def stub_table(stub_dir: Path) -> np.ndarray:
    return np.load(stub_dir / "table.npy")
