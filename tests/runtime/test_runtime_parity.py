"""The runtime on real exported graphs against the PyTorch reference (VectorHub's encode).

The reference needs torch; where it is absent (CI's torch-free run, against prebuilt exports) the tests
that compare with it skip and the runtime-only ones run."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from longformer2vec import Longformer2Vec
from longformer2vec.export.synthetic import SAMPLE_CORPUS

TEXTS = [
    "I enjoy taking long walks along the beach with my dog.",
    "dog",
    "",
    " ".join(SAMPLE_CORPUS[:3]),
    "Ünïcödé, emoji 🐕 and\ttabs\nnewlines.",
]
LONG_TEXT = " ".join(SAMPLE_CORPUS * 6)  # several hundred tokens: over the tiny model's 128


class Reference:
    """VectorHub's Longformer2Vec.encode, computed with HF eager on the same checkpoint."""

    def __init__(self, hf_dir: Path) -> None:
        from transformers import AutoTokenizer, LongformerModel

        self.tokenizer = AutoTokenizer.from_pretrained(hf_dir)
        self.model = LongformerModel.from_pretrained(hf_dir, add_pooling_layer=False).eval()

    def states(self, ids: list[int], global_first: bool = False) -> np.ndarray:
        import torch

        input_ids = torch.tensor([ids])
        glob = torch.zeros_like(input_ids)
        glob[0, 0] = int(global_first)
        with torch.no_grad():
            return self.model(input_ids, global_attention_mask=glob).last_hidden_state[0].numpy()

    def encode(self, text: str, global_first: bool = False, pooling: str = "mean") -> np.ndarray:
        hidden = self.states(self.tokenizer(text)["input_ids"], global_first)
        return hidden.mean(0) if pooling == "mean" else hidden[0]


@pytest.fixture(scope="module")
def reference(tiny_hf: Path) -> Reference:
    return Reference(tiny_hf)


def _cos(a, b) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


@pytest.mark.parametrize("global_attention", ["none", "cls"])
@pytest.mark.parametrize("pooling", ["mean", "cls"])
def test_fp32_encode_equals_reference(tiny_fp32_dir, reference, pooling, global_attention) -> None:
    model = Longformer2Vec(str(tiny_fp32_dir), pooling=pooling, global_attention=global_attention)
    for text in TEXTS:
        ours = model.encode(text)
        assert isinstance(ours, list) and len(ours) == model.vector_length
        assert all(type(x) is float for x in ours)
        ref = reference.encode(text, global_attention == "cls", pooling)
        np.testing.assert_allclose(ours, ref, atol=1e-4, err_msg=repr(text))


def test_int8_encode_close_to_reference(tiny_int8_dir, reference) -> None:
    model = Longformer2Vec(str(tiny_int8_dir))
    cosines = [_cos(model.encode(t), reference.encode(t)) for t in TEXTS]
    print("int8 vs PyTorch pooled cosine:", [f"{c:.6f}" for c in cosines])
    assert min(cosines) >= 0.99


@pytest.mark.parametrize("global_attention", ["none", "cls"])
def test_bulk_encode_equals_encode_on_real_graph(tiny_fp32_dir, global_attention) -> None:
    model = Longformer2Vec(str(tiny_fp32_dir), global_attention=global_attention, batch_size=3)
    texts = [*TEXTS, LONG_TEXT, TEXTS[0]]
    bulk = model.bulk_encode(texts)
    assert len(bulk) == len(texts)
    for text, vector in zip(texts, bulk, strict=True):
        np.testing.assert_allclose(vector, model.encode(text), atol=2e-5)


BATCH_NEIGHBOURS = [TEXTS[3], LONG_TEXT, "a", "dog " * 40, TEXTS[4], "", "word " * 110]


def _max_diff_in_batches(model: Longformer2Vec, target: str) -> float:
    """Largest |difference| between ``target`` embedded alone and inside mixed batches (7 neighbours)."""
    alone = model.encode_numpy([target])[0]
    diffs = []
    for position in (0, 3, len(BATCH_NEIGHBOURS)):
        batch = [*BATCH_NEIGHBOURS[:position], target, *BATCH_NEIGHBOURS[position:]]
        diffs.append(float(np.abs(model.encode_numpy(batch)[position] - alone).max()))
    return max(diffs)


@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_vector_never_depends_on_batch(tiny_fp32_dir, tiny_int8_dir, precision) -> None:
    """A text's vector is the same alone, among 7 texts of mixed lengths, and through `embed`: fp32 batches
    freely; the default int8 graph scales activations per token on inputs up to 128 tokens wide, where
    its rows batch, and once per call above, where each row runs alone (per-call int8 and the rule's
    need: tests/export/test_int8_per_token.py)."""
    directory = tiny_fp32_dir if precision == "fp32" else tiny_int8_dir
    model = Longformer2Vec(str(directory), precision=precision)
    worst = max(_max_diff_in_batches(model, text) for text in (TEXTS[0], TEXTS[4], LONG_TEXT))
    print(f"{precision}: max |alone - in batch| = {worst:.2e}")
    assert worst <= 1e-5

    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "longformer2vec",
            "embed",
            "--model",
            str(directory),
            "--precision",
            precision,
            *BATCH_NEIGHBOURS[:3],
            TEXTS[0],
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert res.returncode == 0, res.stderr
    via_cli = np.asarray(json.loads(res.stdout)[3], dtype=np.float32)
    assert float(np.abs(via_cli - model.encode_numpy([TEXTS[0]])[0]).max()) <= 1e-5

    if precision == "int8":
        assert model.graph.batch_independent_width == 128


def test_long_input_is_windowed_not_truncated(tiny_fp32_dir, reference) -> None:
    """Over max_length: overlapping windows, token-count-weighted mean, equal to PyTorch per window."""
    overlap = 32
    model = Longformer2Vec(str(tiny_fp32_dir), chunk_overlap=overlap)
    ids = reference.tokenizer(LONG_TEXT)["input_ids"]
    assert len(ids) > 2 * model.max_length
    content, chunk_len = ids[1:-1], model.max_length - 2
    windows, start = [], 0  # the documented rule, restated: stride chunk_len - overlap, last one short
    while True:
        windows.append(content[start : start + chunk_len])
        if start + chunk_len >= len(content):
            break
        start += chunk_len - overlap
    assert len(windows) >= 3
    rows = [[ids[0], *w, ids[-1]] for w in windows]
    expected = sum(len(r) * reference.states(r).mean(0) for r in rows) / sum(len(r) for r in rows)
    ours = model.encode(LONG_TEXT)
    np.testing.assert_allclose(ours, expected, atol=1e-4)
    # exactly at the limit, one over it: no crash, no silent truncation
    for n_words in range(1, 400, 37):
        assert len(model.encode("walk " * n_words)) == model.vector_length


def test_runtime_runs_without_torch(tiny_fp32_dir: Path) -> None:
    """A fresh interpreter where torch/transformers cannot be imported encodes the same vector."""
    code = textwrap.dedent(
        f"""
        import builtins, json, sys
        real_import = builtins.__import__
        def guarded(name, *args, **kwargs):
            if name.split(".")[0] in ("torch", "transformers", "optimum"):
                raise ImportError("blocked: " + name)
            return real_import(name, *args, **kwargs)
        builtins.__import__ = guarded
        from longformer2vec import Longformer2Vec
        vector = Longformer2Vec({str(tiny_fp32_dir)!r}).encode({TEXTS[0]!r})
        assert "torch" not in sys.modules
        print(json.dumps(vector))
        """
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert res.returncode == 0, res.stderr
    np.testing.assert_allclose(json.loads(res.stdout), Longformer2Vec(str(tiny_fp32_dir)).encode(TEXTS[0]))


def test_hf_checkpoint_is_exported_into_cache_once(
    tiny_hf: Path, tmp_path: Path, monkeypatch, reference: Reference
) -> None:
    """A hub id / HF directory exports on first use (int8 on CPU), then loads from the cache; without
    global attention the graph leaves it out, with it the runtime exports one that takes global tokens."""
    monkeypatch.setenv("LONGFORMER2VEC_CACHE", str(tmp_path))
    first = Longformer2Vec(str(tiny_hf))
    assert first.precision == "int8" and first.model_dir.parent == tmp_path
    assert first.graph.inputs == ["input_ids", "attention_mask"]
    with_globals = Longformer2Vec(str(tiny_hf), global_attention="cls")
    assert with_globals.graph.global_tokens and with_globals.model_dir == first.model_dir  # added beside it
    assert first.manifest.path.parent == with_globals.manifest.path.parent
    # on the CPU ORT's memory pattern grew with the TopK-sized graph (benchmarks/RESULTS.md): off for it only
    assert first._session.session.get_session_options().enable_mem_pattern
    assert not with_globals._session.session.get_session_options().enable_mem_pattern
    for text in TEXTS:
        assert _cos(first.encode(text), reference.encode(text)) >= 0.99
        assert _cos(with_globals.encode(text), reference.encode(text, global_first=True)) >= 0.99

    import longformer2vec.export as export_pkg

    def fail(*_args, **_kwargs):
        raise AssertionError("exported twice")

    monkeypatch.setattr(export_pkg, "export_model", fail)
    second = Longformer2Vec(str(tiny_hf))
    assert second.model_dir == first.model_dir
    np.testing.assert_allclose(second.encode("dog"), first.encode("dog"))
    assert Longformer2Vec(str(tiny_hf), global_attention="cls").model_dir == with_globals.model_dir


def test_io_binding_gives_the_same_vectors(tiny_int8_dir: Path) -> None:
    """The IO-binding path (default on CUDA) returns what plain session.run returns."""
    texts = ["short", "a somewhat longer text " * 9, ""]
    plain = Longformer2Vec(tiny_int8_dir, use_io_binding=False)
    bound = Longformer2Vec(tiny_int8_dir, use_io_binding=True)
    cls_bound = Longformer2Vec(tiny_int8_dir, use_io_binding=True, pooling="cls")
    cls_plain = Longformer2Vec(tiny_int8_dir, use_io_binding=False, pooling="cls")
    assert bound._session.use_io_binding and not plain._session.use_io_binding
    np.testing.assert_array_equal(plain.encode_numpy(texts), bound.encode_numpy(texts))
    np.testing.assert_array_equal(cls_plain.encode_numpy(texts), cls_bound.encode_numpy(texts))
    assert not np.allclose(cls_bound.encode_numpy(texts), bound.encode_numpy(texts))


def test_optimized_graph_cache_is_written_then_used(tiny_int8_dir: Path, tmp_path: Path) -> None:
    """First load writes ORT's optimized copy into the cache; the next load starts from it, with equal
    vectors; a corrupt copy is replaced, never fatal; off by default and then nothing is written."""
    texts = ["short", "a somewhat longer text " * 9]
    reference = Longformer2Vec(tiny_int8_dir, cache_dir=tmp_path / "off", optimized_cache=False)
    assert not (tmp_path / "off").exists()
    expected = reference.encode_numpy(texts)

    assert not Longformer2Vec(tiny_int8_dir, cache_dir=tmp_path / "default")._session.optimized_cache
    first = Longformer2Vec(tiny_int8_dir, cache_dir=tmp_path, optimized_cache=True)
    (copy,) = (tmp_path / "optimized").glob("*.onnx")
    assert first._session.optimized_cache == copy and copy.stat().st_size > 0
    np.testing.assert_allclose(first.encode_numpy(texts), expected, atol=1e-6)

    import onnx

    from longformer2vec.export.length_switch import all_nodes  # subgraphs too: the int8 graph's If branches

    assert sum(1 for _ in all_nodes(onnx.load(str(copy)).graph)) < first.graph.node_count  # fused, not a copy
    second = Longformer2Vec(tiny_int8_dir, cache_dir=tmp_path, optimized_cache=True)
    np.testing.assert_allclose(second.encode_numpy(texts), expected, atol=1e-6)

    copy.write_bytes(b"not an onnx graph")
    third = Longformer2Vec(tiny_int8_dir, cache_dir=tmp_path, optimized_cache=True)
    np.testing.assert_allclose(third.encode_numpy(texts), expected, atol=1e-6)
    assert copy.stat().st_size > 100  # rewritten from the original graph
