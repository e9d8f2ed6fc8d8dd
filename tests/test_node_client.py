"""The Node client (clients/node) against the Python runtime: golden vectors from `Longformer2Vec.encode`
on tiny exports, compared by `node --test` (fp32 within 1e-5 max abs, int8 within cosine 0.9999).

Skipped when clients/node has no node_modules (install: `cd clients/node && ONNXRUNTIME_NODE_INSTALL=skip
npm ci`), unless LONGFORMER2VEC_REQUIRE_NODE=1 (CI), which turns the skip into a failure.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from longformer2vec import Longformer2Vec

NODE_DIR = Path(__file__).resolve().parent.parent / "clients" / "node"
REQUIRE_NODE = os.environ.get("LONGFORMER2VEC_REQUIRE_NODE") == "1"
FP32_MAX_ABS = 1e-5
INT8_MIN_COSINE = 0.9999
WORDS = (" walks", " along", " the", " beach", " with", " my", " dog", ".", " Longformer", " 42", ",")
FILLERS = (" a", "a", ".", "x")


@pytest.fixture(scope="session")
def node() -> str:
    """The node executable; first of the test's fixtures, so a skip costs no export."""
    node = shutil.which("node")
    missing = None
    if node is None:
        missing = "node is not on PATH"
    elif not (NODE_DIR / "node_modules").is_dir():
        missing = (
            f"{NODE_DIR / 'node_modules'} is absent (cd clients/node && ONNXRUNTIME_NODE_INSTALL=skip npm ci)"
        )
    if missing is not None:
        if REQUIRE_NODE:
            pytest.fail(f"LONGFORMER2VEC_REQUIRE_NODE=1 but {missing}")
        pytest.skip(missing)
    return str(node)


def text_of_length(model: Longformer2Vec, n_tokens: int, prefix: str = "") -> str:
    """A text that tokenizes to exactly ``n_tokens`` ids, specials included (greedy over words, then
    single characters to land on the count)."""

    def count(text: str) -> int:
        return len(model.tokenizer.encode(text).ids)

    text, i = prefix, 0
    while count(text) < n_tokens:
        word = WORDS[i % len(WORDS)]
        i += 1
        if count(text + word) <= n_tokens:
            text += word
            continue
        filler = next((f for f in FILLERS if count(text + f) <= n_tokens), None)
        assert filler is not None, f"cannot reach {n_tokens} tokens from {count(text)}"
        text += filler
    assert count(text) == n_tokens
    return text


def repeat_to(model: Longformer2Vec, unit: str, n_tokens: int) -> str:
    """``unit`` repeated until the text has at least ``n_tokens`` ids."""
    text = unit
    while len(model.tokenizer.encode(text).ids) < n_tokens:
        text += unit
    return text


def golden_texts(model: Longformer2Vec) -> dict[str, str]:
    m = model.max_length
    return {
        "short": "The quick brown fox jumps over the lazy dog.",
        "exactly max_length": text_of_length(model, m),
        "max_length + 1": text_of_length(model, m + 1),
        "3x max_length": text_of_length(model, 3 * m),
        "3x max_length, specials typed in the text": text_of_length(model, 3 * m, prefix="<s></s> x </s>"),
        "unicode": "Ünïcödé — 日本語のテキスト, emoji 😀👍🏽, Ελληνικά, العربية, naïve café",
        "unicode, over 2x max_length": repeat_to(model, "日本語 😀 Ελληνικά naïve. ", 2 * m),
        "empty": "",
        "whitespace": " \n\t ",
    }


def python_vectors(model_dir: Path, texts: list[str], options: dict[str, Any]) -> list[list[float]]:
    """What the Python runtime gives, one text per call (the Node client runs every row alone)."""
    kwargs: dict[str, Any] = {}
    for node_name, python_name in (
        ("pooling", "pooling"),
        ("normalize", "normalize"),
        ("chunkOverlap", "chunk_overlap"),
    ):
        if node_name in options:
            kwargs[python_name] = options[node_name]
    model = Longformer2Vec(str(model_dir), **kwargs)
    if "precision" in options:
        assert model.manifest.precision == options["precision"], (model_dir, options)
    return [model.encode(text) for text in texts]


def write_v2_copy(fp32_dir: Path, int8_dir: Path, out: Path) -> Path:
    """A format-2 directory holding both graphs of two format-1 exports, as the v2 exporter lays it out."""
    out.mkdir(parents=True)
    shutil.copy(fp32_dir / "tokenizer.json", out / "tokenizer.json")
    (out / "onnx").mkdir()
    first = json.loads((fp32_dir / "manifest.json").read_text(encoding="utf-8"))
    graphs = []
    for source, name in ((fp32_dir, "onnx/model.onnx"), (int8_dir, "onnx/model_int8.onnx")):
        data = json.loads((source / "manifest.json").read_text(encoding="utf-8"))
        shutil.copy(source / data["graph_file"], out / name)
        graphs.append(
            {
                "file": name,
                "precision": data["precision"],
                "global_tokens": "global_attention_mask" in data["inputs"],
                "inputs": data["inputs"],
                "outputs": data["outputs"],
                "sha256": data["graph_sha256"],
                "layout": data["layout"],
                "pad_multiple": data["pad_multiple"],
            }
        )
    manifest = {
        "format_version": 2,
        "model_id": first["model_id"],
        "vector_length": first["vector_length"],
        "max_length": first["max_length"],
        "pad_token_id": first["pad_token_id"],
        "pooling": "mean",
        "chunk_overlap": 256,
        "attention_windows": first["attention_windows"],
        "tokenizer_file": "tokenizer.json",
        "card_file": "card.md",
        "graphs": graphs,
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    return out


@pytest.fixture(scope="module")
def node_exports(tiny_hf: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Format-1 exports without global tokens (fp32, int8), and a format-2 copy holding both."""
    from longformer2vec.export import export_model

    root = tmp_path_factory.mktemp("node")
    fp32 = export_model(str(tiny_hf), root / "fp32", precision="fp32", global_tokens=False)
    int8 = export_model(str(tiny_hf), root / "int8", precision="int8", global_tokens=False)
    return {"fp32": fp32, "int8": int8, "v2": write_v2_copy(fp32, int8, root / "v2")}


def test_node_client_matches_python(
    node: str, node_exports: dict[str, Path], tiny_fp32_dir: Path, tmp_path: Path
) -> None:
    fp32, int8, v2 = node_exports["fp32"], node_exports["int8"], node_exports["v2"]
    reference = Longformer2Vec(str(fp32))
    texts = golden_texts(reference)
    names, values = list(texts), list(texts.values())
    fp32_tol = {"max_abs": FP32_MAX_ABS}
    int8_tol = {"min_cosine": INT8_MIN_COSINE}
    cases = [
        # (name, directory the Node client loads, Node options, directory Python encodes with, tolerance)
        ("v1 fp32, defaults", fp32, {}, fp32, fp32_tol),
        (
            "v1 fp32, cls, overlap 16, normalized",
            fp32,
            {"pooling": "cls", "chunkOverlap": 16, "normalize": True},
            fp32,
            fp32_tol,
        ),
        (
            "v1 fp32 taking global tokens (fed zeros), overlap 0",
            tiny_fp32_dir,
            {"chunkOverlap": 0},
            tiny_fp32_dir,
            fp32_tol,
        ),
        ("v1 int8, defaults", int8, {}, int8, int8_tol),
        ("v1 int8, overlap 16, normalized", int8, {"chunkOverlap": 16, "normalize": True}, int8, int8_tol),
        ("v2, defaults (int8)", v2, {}, int8, int8_tol),
        ("v2, fp32, cls", v2, {"precision": "fp32", "pooling": "cls"}, fp32, fp32_tol),
    ]
    goldens = {
        "texts": [
            {"name": name, "text": text, "ids": reference.tokenizer.encode(text).ids}
            for name, text in texts.items()
        ],
        "cases": [
            {
                "name": name,
                "dir": str(node_dir),
                "options": options,
                "tolerance": tolerance,
                "vectors": python_vectors(python_dir, values, options),
            }
            for name, node_dir, options, python_dir, tolerance in cases
        ],
    }
    assert names and all(len(case["vectors"]) == len(names) for case in goldens["cases"])
    golden_file = tmp_path / "goldens.json"
    golden_file.write_text(json.dumps(goldens), encoding="utf-8")
    env = dict(
        os.environ, LONGFORMER2VEC_NODE_GOLDENS=str(golden_file), LONGFORMER2VEC_NODE_MODEL_DIR=str(fp32)
    )
    test_files = sorted(str(p.relative_to(NODE_DIR)) for p in (NODE_DIR / "test").glob("*.test.js"))
    res = subprocess.run(
        [node, "--test", "--test-reporter=tap", *test_files],
        cwd=NODE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    print(res.stdout[-20000:], res.stderr[-5000:])
    assert res.returncode == 0, res.stdout[-5000:] + res.stderr[-5000:]
    counts = {
        key: int(found.group(1))
        if (found := re.search(rf"^# {key}\w* (\d+)$", res.stdout, re.MULTILINE))
        else None
        for key in ("pass", "fail", "skip")
    }
    assert counts["pass"] and counts["fail"] == 0 and counts["skip"] == 0, counts
