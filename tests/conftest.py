"""Shared fixtures: one stub model directory per test session (cheap to build, read-only in tests)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.helpers_exports import export_tiny_fp32, export_tiny_int8, make_tiny_hf, prebuilt
from tests.helpers_runtime import write_stub_model_dir


@pytest.fixture(autouse=True, scope="session")
def _private_cache(tmp_path_factory: pytest.TempPathFactory):
    """Keep the runtime's caches (exports, optimized graphs) out of the user's home during tests."""
    mp = pytest.MonkeyPatch()
    mp.setenv("LONGFORMER2VEC_CACHE", str(tmp_path_factory.mktemp("cache")))
    mp.setenv("HF_HUB_OFFLINE", "1")  # no test reaches the network; the hub probe tests undo this
    yield
    mp.undo()


@pytest.fixture(scope="session")
def stub_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_stub_model_dir(tmp_path_factory.mktemp("stub") / "model")


@pytest.fixture(scope="session")
def stub_table(stub_dir: Path) -> np.ndarray:
    return np.load(stub_dir / "table.npy")


# ---- real exports of a tiny random Longformer (per-layer windows 8/4/8, max 128 tokens)


@pytest.fixture(scope="session")
def tiny_hf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The checkpoint itself: needs torch (tests on it skip in CI's torch-free run)."""
    pytest.importorskip("torch")
    return make_tiny_hf(tmp_path_factory.mktemp("hf") / "tiny")


@pytest.fixture(scope="session")
def tiny_fp32_dir(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Path:
    """fp32, CPU layout, plain and global-token graphs (:func:`tests.helpers_exports.export_tiny_fp32`);
    prebuilt where ``LONGFORMER2VEC_TEST_EXPORTS`` says (the torch-free run)."""
    found = prebuilt("fp32")
    if found is not None:
        return found
    return export_tiny_fp32(request.getfixturevalue("tiny_hf"), tmp_path_factory.mktemp("onnx") / "fp32")


@pytest.fixture(scope="session")
def tiny_int8_dir(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Path:
    """int8 through the CLI (:func:`tests.helpers_exports.export_tiny_int8`); prebuilt likewise."""
    found = prebuilt("int8")
    if found is not None:
        return found
    return export_tiny_int8(request.getfixturevalue("tiny_hf"), tmp_path_factory.mktemp("onnx") / "int8")


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    """Say which tests were skipped and why, and how to build what they wanted (tests/skip_summary.py)."""
    from tests.skip_summary import summary_lines

    lines = summary_lines(terminalreporter.stats.get("skipped", []))
    if lines:
        terminalreporter.section("what this run skipped")
        for line in lines:
            terminalreporter.write_line(line)
