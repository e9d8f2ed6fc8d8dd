"""Subprocess tests: the runtime works with torch/transformers unimportable, and the CLI contract."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BLOCKER = """
import sys
class _Block:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in ('torch', 'transformers'):
            raise ImportError(f'blocked import of {name}')
        return None
sys.meta_path.insert(0, _Block())
"""


def _run(*args: str, code: str | None = None) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-c", code] if code is not None else [sys.executable, "-m", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)


def test_runtime_never_needs_torch(stub_dir: Path) -> None:
    code = (
        BLOCKER
        + f"""
from longformer2vec import Longformer2Vec
import longformer2vec.cli, longformer2vec.hub, longformer2vec.models
m = Longformer2Vec({str(stub_dir)!r})
v = m.encode("hello dog")
assert len(v) == m.vector_length, v
assert 'torch' not in sys.modules and 'transformers' not in sys.modules
print("ok")
"""
    )
    res = _run(code=code)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "ok"


def test_cli_info(stub_dir: Path) -> None:
    res = _run("longformer2vec.cli", "info", str(stub_dir))
    assert res.returncode == 0, res.stderr
    assert "stub/longformer-tiny" in res.stdout and "one_token" in res.stdout
    assert "parity onnx/model_global.onnx (fp32) vs PyTorch" in res.stdout
    assert "graphs:         fp32, global tokens" in res.stdout
    assert "onnx/model_global.onnx: fp32, global tokens; layout gpu, pad multiple 8" in res.stdout


def test_cli_embed(stub_dir: Path) -> None:
    res = _run("longformer2vec", "embed", "--model", str(stub_dir), "dog", "")
    assert res.returncode == 0, res.stderr
    vectors = json.loads(res.stdout)
    assert len(vectors) == 2 and all(len(v) == 8 for v in vectors)


def test_cli_error_is_one_line(tmp_path: Path) -> None:
    res = _run("longformer2vec.cli", "info", str(tmp_path / "missing"))
    assert res.returncode == 1
    assert "Traceback" not in res.stderr and str(tmp_path / "missing") in res.stderr


def test_cli_export_without_extra(tmp_path: Path) -> None:
    code = (
        BLOCKER
        + f"""
sys.modules['longformer2vec.export'] = None
from longformer2vec.cli import main
raise SystemExit(main(['export', 'allenai/longformer-base-4096', '--output', {str(tmp_path / "out")!r}]))
"""
    )
    res = _run(code=code)
    assert res.returncode == 2
    assert "pip install -e '.[export]'" in res.stderr and "Traceback" not in res.stderr


def test_cli_embed_undecodable_argument(stub_dir: Path) -> None:
    """Bytes that are not UTF-8 reach argv as lone surrogates: one line naming the argument, exit 2."""
    res = subprocess.run(
        [sys.executable, "-m", "longformer2vec", "embed", "--model", str(stub_dir), "ok", b"caf\xe9"],
        capture_output=True,
        timeout=120,
        check=False,
    )
    stderr = res.stderr.decode()
    assert res.returncode == 2, stderr
    assert "text argument 2 is not valid Unicode" in stderr and "Traceback" not in stderr
    assert len(stderr.strip().splitlines()) == 1
