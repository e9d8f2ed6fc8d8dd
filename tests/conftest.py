"""Shared fixtures: one stub model directory per test session (cheap to build, read-only in tests)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.helpers_runtime import write_stub_model_dir


@pytest.fixture(autouse=True, scope="session")
def _private_cache(tmp_path_factory: pytest.TempPathFactory):
    """Keep the runtime's caches (exports, optimized graphs) out of the user's home during tests."""
    mp = pytest.MonkeyPatch()
    mp.setenv("LONGFORMER2VEC_CACHE", str(tmp_path_factory.mktemp("cache")))
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
    from longformer2vec.export.synthetic import make_random_longformer

    return make_random_longformer(tmp_path_factory.mktemp("hf") / "tiny", "tiny", attention_window=[8, 4, 8])


@pytest.fixture(scope="session")
def tiny_fp32_dir(tiny_hf: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The CPU layout (per-head attention chains), which a model this narrow only gets when asked, with
    both graphs (plain, and one that takes global tokens): the parity tests against HF run on it; the
    int8 export below keeps the automatic (GPU) layout and the default (plain) graph only."""
    from longformer2vec.export import export_model

    return export_model(
        str(tiny_hf),
        tmp_path_factory.mktemp("onnx") / "fp32",
        precision="fp32",
        layout="cpu",
        global_tokens=True,
    )


@pytest.fixture(scope="session")
def tiny_int8_dir(tiny_hf: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Exported through the CLI, as a user would."""
    import subprocess
    import sys

    out = tmp_path_factory.mktemp("onnx") / "int8"
    cmd = [
        sys.executable,
        "-m",
        "longformer2vec",
        "export",
        str(tiny_hf),
        "--output",
        str(out),
        "--precision",
        "int8",
    ]
    res = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert res.returncode == 0, res.stderr
    assert "parity int8" in res.stderr and "graphs:         int8" in res.stdout
    assert "onnx/model_int8.onnx: int8, recipe all-linear; layout gpu" in res.stdout
    return out


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    """Say which tests were skipped and why, and how to build what they wanted (tests/skip_summary.py)."""
    from tests.skip_summary import summary_lines

    lines = summary_lines(terminalreporter.stats.get("skipped", []))
    if lines:
        terminalreporter.section("what this run skipped")
        for line in lines:
            terminalreporter.write_line(line)
