"""The tiny real exports the tests share (a random Longformer, windows 8/4/8, 128 tokens), built here so
the test fixtures and CI's torch-free run use the same ones.

``python -m tests.helpers_exports DIR`` builds them into ``DIR/fp32`` and ``DIR/int8`` (needs the export
extra). With ``LONGFORMER2VEC_TEST_EXPORTS=DIR`` the fixtures use those instead of exporting: that is
how the runtime's tests run in an environment without torch (``.ci/runtime_tests.sh``).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

PREBUILT_ENV = "LONGFORMER2VEC_TEST_EXPORTS"


def prebuilt(name: str) -> Path | None:
    """``$LONGFORMER2VEC_TEST_EXPORTS/name`` when that variable is set (it must then hold the export)."""
    root = os.environ.get(PREBUILT_ENV)
    if not root:
        return None
    path = Path(root) / name
    if not (path / "manifest.json").is_file():
        raise FileNotFoundError(
            f"{PREBUILT_ENV}={root} has no export {name!r}: run python -m tests.helpers_exports"
        )
    return path


def make_tiny_hf(out: Path) -> Path:
    from longformer2vec.export.synthetic import make_random_longformer

    return make_random_longformer(out, "tiny", attention_window=[8, 4, 8])


def export_tiny_fp32(tiny_hf: Path, out: Path) -> Path:
    """The CPU layout (per-head attention chains), which a model this narrow only gets when asked, with
    both graphs (plain, and one that takes global tokens): the parity tests against HF run on it."""
    from longformer2vec.export import export_model

    return export_model(str(tiny_hf), out, precision="fp32", layout="cpu", global_tokens=True)


def export_tiny_int8(tiny_hf: Path, out: Path) -> Path:
    """Exported through the CLI, as a user would: the automatic (GPU) layout, the plain graph only."""
    cmd = [sys.executable, "-m", "longformer2vec", "export", str(tiny_hf), "--output", str(out)]
    res = subprocess.run([*cmd, "--precision", "int8"], capture_output=True, text=True, check=False)
    assert res.returncode == 0, res.stderr
    assert "parity int8" in res.stderr and "graphs:         int8" in res.stdout
    assert (
        "onnx/model_int8.onnx: int8, recipe all-linear, rows batch up to 128 tokens; layout gpu" in res.stdout
    )
    return out


def main(root: Path) -> None:
    hf = make_tiny_hf(root / "hf")
    export_tiny_fp32(hf, root / "fp32")
    export_tiny_int8(hf, root / "int8")
    print(f"tiny exports in {root}: fp32, int8")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
