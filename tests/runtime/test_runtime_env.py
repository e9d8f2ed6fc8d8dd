"""The runtime's promise: onnxruntime, numpy and tokenizers only. Its faces import no torch, and CI runs
the runtime's tests in an environment where torch is not installed at all."""

from __future__ import annotations

import os
import subprocess
import sys
from importlib.util import find_spec

import pytest


@pytest.mark.skipif(
    os.environ.get("LONGFORMER2VEC_RUNTIME_ONLY") != "1", reason="CI's torch-free environment only"
)
def test_this_environment_has_no_torch() -> None:
    assert find_spec("torch") is None and find_spec("transformers") is None


def test_importing_the_faces_imports_no_torch() -> None:
    code = (
        "import sys, longformer2vec, longformer2vec.export, longformer2vec.cli, longformer2vec.hub\n"
        "import longformer2vec.export.directory, longformer2vec.export.synthetic\n"
        "heavy = sorted(m for m in ('torch', 'transformers') if m in sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    res = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert res.returncode == 0, res.stderr
