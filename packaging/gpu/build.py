"""Build the `longformer2vec-gpu` wheel: the same code, depending on onnxruntime-gpu instead of onnxruntime.

Why a sibling distribution and not an extra: `onnxruntime` and `onnxruntime-gpu` ship the same
`onnxruntime` module and overwrite each other, and a pip extra can only add packages, so
`longformer2vec[gpu]` would always install both. fastembed / fastembed-gpu solve it the same way.

Usage: python packaging/gpu/build.py [--out dist]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ("runtime", "export", "models", "README.md")


def gpu_pyproject(text: str) -> str:
    """The main pyproject.toml with the distribution name and the onnxruntime wheel swapped."""
    swaps = {
        'name = "longformer2vec"': 'name = "longformer2vec-gpu"',
        '"onnxruntime>=': '"onnxruntime-gpu>=',
        '"longformer2vec[': '"longformer2vec-gpu[',  # self-referencing extras (test, ray)
    }
    for old, new in swaps.items():
        if old not in text:
            raise ValueError(f"pyproject.toml no longer contains {old!r}; update packaging/gpu/build.py")
        text = text.replace(old, new)
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "dist")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        stage = Path(tmp)
        for name in SOURCES:
            src = ROOT / name
            if src.is_dir():
                shutil.copytree(src, stage / name, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                shutil.copy(src, stage / name)
        (stage / "pyproject.toml").write_text(gpu_pyproject((ROOT / "pyproject.toml").read_text()))
        cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", str(args.out.resolve()), str(stage)]
        subprocess.run(cmd, check=True)


if __name__ == "__main__":
    main()
