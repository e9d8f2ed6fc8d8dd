"""Other tools load an exported directory as it is, each with its documented defaults.

sentence-transformers (ONNX backend), optimum's ORTModelForFeatureExtraction, fastembed and
transformers.js each run in their own environment (their pins conflict with this project's: optimum-onnx
needs transformers < 4.58), which `.ci/consumers.sh` builds and names in environment variables. Each
consumer embeds the same texts; its vectors must equal the PyTorch reference (VectorHub's encode: mean
of last_hidden_state over the real tokens, no global attention). Without a consumer's variable its test
skips, unless LONGFORMER2VEC_REQUIRE_CONSUMERS=1 (CI), where a missing environment is a failure.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from tokenizers import Tokenizer
from transformers import LongformerModel

from longformer2vec import Longformer2Vec
from longformer2vec.export.synthetic import SAMPLE_CORPUS

CONSUMERS_DIR = Path(__file__).parent / "consumers"
REQUIRE_ENV = "LONGFORMER2VEC_REQUIRE_CONSUMERS"
ST_PYTHON = "LONGFORMER2VEC_ST_PYTHON"
FASTEMBED_PYTHON = "LONGFORMER2VEC_FASTEMBED_PYTHON"
NODE_CONSUMER_DIR = "LONGFORMER2VEC_NODE_CONSUMER_DIR"

SHORT_TEXTS = [
    "I enjoy taking long walks along the beach with my dog.",
    "dog",
    "Ünïcödé: naïve café, 東京の寿司 🍣, Ελληνικά, русский текст.",
    " ".join(SAMPLE_CORPUS[:3]),
]
OVER_LONG_TEXT = " ".join(SAMPLE_CORPUS * 6)  # several hundred tokens: consumers truncate it

FP32_MIN_COSINE = 0.9999
FP32_MAX_ABS = 1e-4
INT8_MIN_COSINE_VS_RUNTIME = 0.9999
INT8_MIN_COSINE_VS_TORCH = 0.99


# ---- the exported directory, its texts and the PyTorch reference


@pytest.fixture(scope="module")
def export_dir(tiny_hf: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """fp32 and int8 graphs in one directory, exported through the CLI as a user would."""
    out = tmp_path_factory.mktemp("consumers") / "tiny-longformer"
    cmd = [sys.executable, "-m", "longformer2vec", "export", str(tiny_hf), "--output", str(out)]
    res = subprocess.run([*cmd, "--precision", "fp32,int8"], capture_output=True, text=True, check=False)
    assert res.returncode == 0, res.stderr
    return out


@pytest.fixture(scope="module")
def manifest(export_dir: Path) -> dict:
    return json.loads((export_dir / "manifest.json").read_text())


@pytest.fixture(scope="module")
def tokenizer(export_dir: Path) -> Tokenizer:
    return Tokenizer.from_file(str(export_dir / "tokenizer.json"))


@pytest.fixture(scope="module")
def texts(tokenizer: Tokenizer, manifest: dict) -> list[str]:
    """Short texts, unicode, one of exactly the model's maximum length (specials included), one over it."""
    max_length = manifest["max_length"]
    words = " ".join(SAMPLE_CORPUS).split()
    longest, n = "", 0
    while True:
        candidate = " ".join(words[i % len(words)] for i in range(n + 1))
        if len(tokenizer.encode(candidate).ids) > max_length:
            break
        longest, n = candidate, n + 1
    full = longest
    # Pad with single-token words until the text holds exactly max_length tokens.
    while len(tokenizer.encode(full + " a").ids) <= max_length:
        full += " a"
    assert len(tokenizer.encode(full).ids) == max_length, len(tokenizer.encode(full).ids)
    assert len(tokenizer.encode(OVER_LONG_TEXT).ids) > 2 * max_length
    return [*SHORT_TEXTS, full, OVER_LONG_TEXT]


def consumer_rows(tokenizer: Tokenizer, texts: list[str], max_length: int, consumer: str) -> list[list[int]]:
    """The token ids a consumer feeds the graph for each text. Python consumers truncate a text over the
    maximum with HF tokenizers (its first max_length - 1 tokens, then ``</s>``); transformers.js cuts
    the special-wrapped ids after the fact (the first max_length, ``</s>`` lost)."""
    rows = []
    for text in texts:
        ids = tokenizer.encode(text).ids
        if len(ids) > max_length:
            ids = ids[:max_length] if consumer == "transformers.js" else [*ids[: max_length - 1], ids[-1]]
        rows.append(ids)
    return rows


class TorchReference:
    """VectorHub's encode on the same checkpoint: mean of last_hidden_state, no global attention."""

    def __init__(self, hf_dir: Path) -> None:
        self.model = LongformerModel.from_pretrained(hf_dir, add_pooling_layer=False).eval()
        self._cache: dict[tuple[int, ...], np.ndarray] = {}

    def vectors(self, rows: list[list[int]]) -> np.ndarray:
        for ids in rows:
            if tuple(ids) not in self._cache:
                with torch.no_grad():
                    hidden = self.model(torch.tensor([ids])).last_hidden_state[0]
                self._cache[tuple(ids)] = hidden.double().mean(0).numpy()
        return np.stack([self._cache[tuple(ids)] for ids in rows])


@pytest.fixture(scope="module")
def torch_model(tiny_hf: Path) -> TorchReference:
    return TorchReference(tiny_hf)


def graph_on_batch(graph: Path, rows: list[list[int]], pad_id: int) -> np.ndarray:
    """Mean-pooled last_hidden_state of one ONNX call on all rows right-padded to the longest, as the
    consumers batch them (int8 graphs from older exports scale activations per call, so this is what
    consumers must return for any graph)."""
    import onnxruntime as ort

    width = max(len(ids) for ids in rows)
    input_ids = np.full((len(rows), width), pad_id, dtype=np.int64)
    mask = np.zeros((len(rows), width), dtype=np.int64)
    for i, ids in enumerate(rows):
        input_ids[i, : len(ids)], mask[i, : len(ids)] = ids, 1
    session = ort.InferenceSession(str(graph), providers=["CPUExecutionProvider"])
    (hidden,) = session.run(["last_hidden_state"], {"input_ids": input_ids, "attention_mask": mask})
    weights = mask[:, :, None].astype(np.float64)
    return (hidden * weights).sum(1) / weights.sum(1)


def _compare(label: str, got: np.ndarray, want: np.ndarray) -> tuple[float, float]:
    """Print and return the smallest cosine and the largest absolute difference over the texts."""
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    assert got.shape == want.shape, f"{label}: shape {got.shape}, expected {want.shape}"
    cosines = (got * want).sum(1) / (np.linalg.norm(got, axis=1) * np.linalg.norm(want, axis=1))
    max_abs = float(np.abs(got - want).max())
    print(f"{label}: min cosine {cosines.min():.7f}, max abs {max_abs:.2e}, per text {np.round(cosines, 7)}")
    return float(cosines.min()), max_abs


# ---- running a consumer in its own environment


def _required() -> bool:
    return os.environ.get(REQUIRE_ENV) == "1"


def _missing(message: str) -> None:
    if _required():
        pytest.fail(f"{message} ({REQUIRE_ENV}=1)")
    pytest.skip(message)


def _consumer_argv(consumer: str) -> list[str]:
    """The command that runs one consumer's script in that consumer's environment."""
    if consumer in ("sentence-transformers", "optimum", "fastembed"):
        var = FASTEMBED_PYTHON if consumer == "fastembed" else ST_PYTHON
        python = os.environ.get(var)
        if not python:
            _missing(f"{var} is not set: the {consumer} environment is not built (bash .ci/consumers.sh)")
        if not Path(python).exists():
            pytest.fail(f"{var}={python}: no such interpreter")
        script = {
            "sentence-transformers": "sentence_transformers_embed.py",
            "optimum": "optimum_embed.py",
            "fastembed": "fastembed_embed.py",
        }[consumer]
        return [python, str(CONSUMERS_DIR / script)]
    js_dir = os.environ.get(NODE_CONSUMER_DIR)
    node = shutil.which("node")
    if not js_dir or node is None:
        _missing(f"{NODE_CONSUMER_DIR} is not set or node is missing: transformers.js is not installed")
    if not (Path(js_dir) / "node_modules" / "@huggingface" / "transformers").is_dir():
        pytest.fail(f"{NODE_CONSUMER_DIR}={js_dir}: no node_modules/@huggingface/transformers there")
    return [node, str(Path(js_dir) / "embed.mjs")]


def _run_consumer(consumer: str, request: dict) -> np.ndarray:
    """Run the consumer offline (HF_HUB_OFFLINE: a hub look-up fails instead of reaching out)."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONDONTWRITEBYTECODE": "1"}
    res = subprocess.run(
        _consumer_argv(consumer),
        input=json.dumps(request),
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
    )
    assert res.returncode == 0, f"{consumer} failed (exit {res.returncode}):\n{res.stderr[-4000:]}"
    return np.asarray(json.loads(res.stdout)["vectors"], dtype=np.float64)


# ---- the tests


@pytest.mark.parametrize("consumer", ["sentence-transformers", "optimum", "fastembed", "transformers.js"])
def test_consumer_fp32_equals_pytorch(consumer, export_dir, manifest, tokenizer, texts, torch_model) -> None:
    """Default options: the fp32 graph (onnx/model.onnx), the directory's tokenizer and maximum length."""
    request = {"dir": str(export_dir), "texts": texts, "dim": manifest["vector_length"]}
    vectors = _run_consumer(consumer, request)
    want = torch_model.vectors(consumer_rows(tokenizer, texts, manifest["max_length"], consumer))
    cosine, max_abs = _compare(f"{consumer} fp32 vs PyTorch", vectors, want)
    assert cosine >= FP32_MIN_COSINE and max_abs <= FP32_MAX_ABS


@pytest.mark.parametrize(
    ("consumer", "option"),
    [
        ("sentence-transformers", {"file_name": "onnx/model_int8.onnx"}),
        ("transformers.js", {"dtype": "int8"}),
    ],
)
def test_consumer_int8_equals_runtime(
    consumer, option, export_dir, manifest, tokenizer, texts, torch_model
) -> None:
    """The int8 graph, picked by each consumer's documented option. Its vectors are the int8 graph's on
    the consumer's padded batch (to float noise: this tells int8 from fp32), and close to
    longformer2vec's int8 vectors, which run each text in its own call."""
    vectors = _run_consumer(consumer, {"dir": str(export_dir), "texts": texts, **option})
    rows = consumer_rows(tokenizer, texts, manifest["max_length"], consumer)
    on_batch = graph_on_batch(export_dir / "onnx" / "model_int8.onnx", rows, manifest["pad_token_id"])
    _, batch_abs = _compare(f"{consumer} int8 vs the int8 graph on its batch", vectors, on_batch)
    model = Longformer2Vec(export_dir, precision="int8")
    ours = [model.encode(text) for text in texts[:-1]]  # the runtime windows the over-long text
    cos_ours, _ = _compare(f"{consumer} int8 vs longformer2vec int8", vectors[:-1], ours)
    cos_torch, torch_abs = _compare(f"{consumer} int8 vs PyTorch", vectors, torch_model.vectors(rows))
    assert batch_abs <= 1e-5 < torch_abs
    assert cos_ours >= INT8_MIN_COSINE_VS_RUNTIME and cos_torch >= INT8_MIN_COSINE_VS_TORCH


def test_runtime_fp32_equals_pytorch(export_dir, manifest, tokenizer, texts, torch_model) -> None:
    """The same directory through longformer2vec itself (the over-long text is windowed: left out)."""
    model = Longformer2Vec(export_dir, precision="fp32")
    ours = [model.encode(text) for text in texts[:-1]]
    want = torch_model.vectors([tokenizer.encode(text).ids for text in texts[:-1]])
    cosine, max_abs = _compare("longformer2vec fp32 vs PyTorch", ours, want)
    assert cosine >= FP32_MIN_COSINE and max_abs <= FP32_MAX_ABS


def test_missing_consumer_environment_fails_when_required(monkeypatch) -> None:
    """In CI a consumer whose environment was not built must fail, not skip."""
    monkeypatch.delenv(ST_PYTHON, raising=False)
    monkeypatch.setenv(REQUIRE_ENV, "1")
    with pytest.raises(pytest.fail.Exception, match=ST_PYTHON):
        _consumer_argv("sentence-transformers")
    monkeypatch.setenv(REQUIRE_ENV, "0")
    with pytest.raises(pytest.skip.Exception, match=ST_PYTHON):
        _consumer_argv("sentence-transformers")
