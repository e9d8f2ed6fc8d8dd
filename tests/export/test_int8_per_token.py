"""int8 activation scaling: per token (export/per_token.py: the arithmetic of one layer, row independence),
per call (`export --int8-activations per-tensor`; one row per call) and by length (the default,
export/length_switch.py: per token up to 128 tokens wide, where rows batch, per call above), and the
runtime's batching rule for each."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from longformer2vec import Longformer2Vec, batching
from longformer2vec.export.per_token import quantize_per_token, quantize_weight

K, N = 48, 40


def _linear(path: Path, weight: np.ndarray, bias: np.ndarray, opset: int) -> Path:
    """x @ W + b as MatMul then Add, the way the traced Longformer writes a linear layer."""
    nodes = [
        helper.make_node("MatMul", ["x", "W"], ["m"], name="/layer/dense/MatMul"),
        helper.make_node("Add", ["b", "m"], ["y"], name="/layer/dense/Add"),
    ]
    graph = helper.make_graph(
        nodes,
        "linear",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", "sequence", K])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", "sequence", N])],
        [numpy_helper.from_array(weight, "W"), numpy_helper.from_array(bias, "b")],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)]), str(path))
    return path


def _reference(x: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """The documented arithmetic in numpy: per-token symmetric u8 (zero point 128), s8 weights per column."""
    x = x.astype(np.float32)  # the graph's float32 steps, so that no value rounds the other way
    scale = np.maximum(np.abs(x).max(-1, keepdims=True) * np.float32(1 / 127), np.float32(1e-30))
    xq = np.clip(np.rint(x * (np.float32(1) / scale)), -127, 127).astype(np.float64)
    wq, w_scale = quantize_weight(weight)
    return (xq @ wq.astype(np.float64)) * scale * w_scale + bias


@pytest.mark.parametrize("opset", [17, 18])
def test_one_layer_matches_the_arithmetic_and_rows_do_not_interact(tmp_path: Path, opset: int) -> None:
    rng = np.random.default_rng(0)
    weight = rng.standard_normal((K, N)).astype(np.float32) * 0.1
    bias = rng.standard_normal(N).astype(np.float32)
    fp32 = _linear(tmp_path / "fp32.onnx", weight, bias, opset)
    quantize_per_token(fp32, tmp_path / "int8.onnx", ["/layer/dense/MatMul"])
    session = ort.InferenceSession(str(tmp_path / "int8.onnx"), providers=["CPUExecutionProvider"])
    x = rng.standard_normal((3, 5, K)).astype(np.float32)
    x[1] *= 300.0  # a loud neighbour: with one scale per call it would flatten the quiet rows
    x[2, 4] = 0.0  # an all-zero token (padding-like)
    got = session.run(None, {"x": x})[0]
    expected = _reference(x, weight, bias)
    exact = x.astype(np.float64) @ weight + bias
    error = float(np.abs(got - expected).max() / np.abs(expected).max())
    quantization = float(np.linalg.norm(got[0] - exact[0]) / np.linalg.norm(exact[0]))
    print(
        f"opset {opset}: max |onnx - numpy per-token| / max = {error:.2e}; rel error vs fp32 {quantization:.4f}"
    )
    assert (
        error < 1e-5
    )  # the bias is added once, unscaled (a fused bias would be multiplied by the row scale)
    assert quantization < 0.02
    np.testing.assert_allclose(got[2, 4], bias, atol=1e-6)
    alone = session.run(None, {"x": x[:1, :2]})[0]
    assert np.array_equal(alone, got[:1, :2])  # integer GEMM: a row alone is bit-identical to in a batch


def test_shared_input_is_quantized_once(tmp_path: Path) -> None:
    """Two layers that read the same tensor (the attention projections) share one quantized copy."""
    rng = np.random.default_rng(1)
    w1, w2 = (rng.standard_normal((K, N)).astype(np.float32) for _ in range(2))
    nodes = [helper.make_node("MatMul", ["x", w], [w + "_out"], name=w) for w in ("W1", "W2")]
    graph = helper.make_graph(
        nodes,
        "two",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["b", K])],
        [helper.make_tensor_value_info(w + "_out", TensorProto.FLOAT, ["b", N]) for w in ("W1", "W2")],
        [numpy_helper.from_array(w1, "W1"), numpy_helper.from_array(w2, "W2")],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(tmp_path / "f.onnx"))
    model = quantize_per_token(tmp_path / "f.onnx", tmp_path / "q.onnx", ["W1", "W2"])
    ops = [node.op_type for node in model.graph.node]
    assert ops.count("QuantizeLinear") == 1 and ops.count("MatMulIntegerToFloat") == 2
    assert {init.name for init in model.graph.initializer}.isdisjoint({"W1", "W2"})  # fp32 weights dropped


def test_unknown_node_is_refused(tmp_path: Path) -> None:
    weight = np.ones((K, N), np.float32)
    fp32 = _linear(tmp_path / "fp32.onnx", weight, np.zeros(N, np.float32), 17)
    with pytest.raises(ValueError, match="no MatMul named"):
        quantize_per_token(fp32, tmp_path / "int8.onnx", ["/nope/MatMul"])


def _export_int8(tiny_hf: Path, out: Path, activations: str) -> Path:
    """An int8 export with ``--int8-activations activations``, through the CLI as a user asks for it."""
    import subprocess
    import sys

    cmd = [sys.executable, "-m", "longformer2vec", "export", str(tiny_hf), "--output", str(out)]
    cmd += ["--precision", "int8", "--int8-activations", activations]
    res = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert res.returncode == 0, res.stderr
    return out


@pytest.fixture(scope="module")
def per_token_int8_dir(tiny_hf: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One activation scale per token at every width."""
    return _export_int8(tiny_hf, tmp_path_factory.mktemp("onnx") / "per-token", "per-token")


def test_per_token_int8_batches_and_every_vector_is_the_same_alone(per_token_int8_dir: Path) -> None:
    """Its manifest says so, the runtime batches it, and a batch moves no row's vector."""
    (graph,) = json.loads((per_token_int8_dir / "manifest.json").read_text())["graphs"]
    assert graph["quantization"]["batch_independent"] is True
    assert graph["quantization"]["activations"] != "u8, dynamic, per tensor"
    model = Longformer2Vec(per_token_int8_dir, precision="int8")
    assert batching.max_rows_per_call(model.graph, 8) == 8
    texts = ["dog", "I enjoy taking long walks along the beach with my dog. " * 3, "a b c " * 20, ""]
    alone = np.stack([model.encode_numpy([t])[0] for t in texts])
    worst = float(np.abs(model.encode_numpy(texts) - alone).max())
    print(f"per-token int8: max |alone - in batch| = {worst:.2e}")
    assert worst <= 1e-5


@pytest.fixture(scope="module")
def per_call_int8_dir(tiny_hf: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """ONNX Runtime's dynamic quantization only (one scale per call)."""
    return _export_int8(tiny_hf, tmp_path_factory.mktemp("onnx") / "per-call", "per-tensor")


def test_per_call_int8_runs_one_row_per_call(
    per_call_int8_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ONNX Runtime's per-call scale: the runtime keeps every vector independent by running it one row
    per call, and the rule matters: batched, it moves its rows."""
    (graph,) = json.loads((per_call_int8_dir / "manifest.json").read_text())["graphs"]
    assert graph["quantization"]["batch_independent"] is False
    assert graph["quantization"]["activations"] == "u8, dynamic, per tensor"
    model = Longformer2Vec(per_call_int8_dir, precision="int8")
    assert batching.max_rows_per_call(model.graph, 8) == 1
    texts = ["dog", "I enjoy taking long walks along the beach with my dog. " * 3, "a b c " * 20]
    alone = np.stack([model.encode_numpy([t])[0] for t in texts])
    assert float(np.abs(model.encode_numpy(texts) - alone).max()) <= 1e-5
    monkeypatch.setattr(batching, "max_rows_per_call", lambda graph, batch_size: batch_size)
    moved = float(np.abs(model.encode_numpy(texts) - alone).max())
    print(f"per-call int8 with several rows per call: max |alone - in batch| = {moved:.2e}")
    assert moved > 1e-5


def _session(path: Path) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _pooled(session: ort.InferenceSession, ids: np.ndarray) -> np.ndarray:
    feed = {"input_ids": ids, "attention_mask": np.ones_like(ids)}
    return session.run(["sentence_embedding"], feed)[0]


def test_the_default_int8_is_per_token_up_to_a_width_and_per_call_above(
    tiny_int8_dir: Path, per_call_int8_dir: Path, per_token_int8_dir: Path, tmp_path: Path
) -> None:
    """The by-length graph gives the per-token graph's results on inputs up to its width and the per-call
    graph's above, bit for bit, and stores the shared s8 weights once. The tiny model takes at most 128
    tokens, the default width, so the switch is rebuilt here from the same two graphs at 16 tokens."""
    from longformer2vec.export.length_switch import merge_by_length

    (graph,) = json.loads((tiny_int8_dir / "manifest.json").read_text())["graphs"]
    assert graph["quantization"]["activation_mode"] == "by-length"
    assert graph["quantization"]["batch_independent_width"] == 128
    long_path = per_call_int8_dir / "onnx" / "model_int8.onnx"
    short_path = per_token_int8_dir / "onnx" / "model_int8.onnx"
    merge_by_length(long_path, short_path, tmp_path / "switch.onnx", 16)
    switch, per_call, per_token = (_session(p) for p in (tmp_path / "switch.onnx", long_path, short_path))
    rng = np.random.default_rng(3)
    for batch, width in [(1, 5), (3, 16), (1, 17), (2, 64), (1, 128)]:
        ids = rng.integers(5, 100, (batch, width)).astype(np.int64)
        want, other = (per_token, per_call) if width <= 16 else (per_call, per_token)
        got = _pooled(switch, ids)
        differs = float(np.abs(got - _pooled(other, ids)).max())
        print(
            f"{batch}x{width}: equal to {'per-token' if width <= 16 else 'per-call'}; the other differs by {differs:.1e}"
        )
        assert np.array_equal(got, _pooled(want, ids))
        assert differs > 0

    def s8_weights(path: Path) -> list[bytes]:
        model = onnx.load(str(path))
        return sorted(i.raw_data for i in model.graph.initializer if i.data_type == TensorProto.INT8)

    assert s8_weights(tmp_path / "switch.onnx") == s8_weights(long_path)  # one copy, shared by both branches


def test_the_default_int8_batches_short_texts_and_runs_long_ones_alone(tiny_int8_dir: Path) -> None:
    """Short texts share calls with every vector as it is alone; texts over 128 tokens run one per call."""
    model = Longformer2Vec(tiny_int8_dir, precision="int8")
    assert model.graph.batch_independent_width == 128
    texts = [
        "dog",
        "a b c " * 20,
        "I enjoy taking long walks along the beach with my dog. " * 3,
        "x " * 400,
        "",
    ]
    lengths = [len(e.ids) for e in model.tokenizer.encode_batch(texts)]
    batches = batching.call_batches(model.graph, lengths, 8, 2048)
    assert any(len(b) > 1 for b in batches) and all(
        len(b) == 1 for b in batches if max(lengths[i] for i in b) > 128
    )
    alone = np.stack([model.encode_numpy([t])[0] for t in texts])
    worst = float(np.abs(model.encode_numpy(texts) - alone).max())
    print(f"by-length int8, token counts {lengths}: max |alone - in batch| = {worst:.2e}")
    assert worst <= 1e-5


def test_manifest_without_the_flag_runs_one_row_per_call(per_token_int8_dir: Path) -> None:
    """Directories written before the flag existed hold per-call int8 graphs."""
    model = Longformer2Vec(per_token_int8_dir, precision="int8")
    assert batching.max_rows_per_call(model.graph, 8) == 8
    old = {k: v for k, v in model.graph.quantization.items() if k != "batch_independent"}
    assert batching.max_rows_per_call(replace(model.graph, quantization=old), 8) == 1


def test_int8_batches_short_rows_and_runs_long_rows_alone() -> None:
    """Queries and sentences share calls; documents (over 128 tokens) run one per call, as before."""
    from longformer2vec.contract import GraphEntry

    flag = {"batch_independent": True}
    per_token = GraphEntry("onnx/model_int8.onnx", "int8", False, pad_multiple=128, quantization=flag)
    by_length = {"batch_independent": True, "batch_independent_width": 128}
    switch = GraphEntry("onnx/model_int8.onnx", "int8", False, pad_multiple=32, quantization=by_length)
    per_call = GraphEntry("onnx/model_int8.onnx", "int8", False, pad_multiple=128, quantization={})
    fp32 = GraphEntry("onnx/model.onnx", "fp32", False, pad_multiple=128)
    lengths = [5, 300, 7, 200, 90, 128, 129]
    assert batching.call_batches(per_token, lengths, 8, 2048) == [[0, 2, 4, 5], [6], [3], [1]]
    assert batching.call_batches(per_call, lengths, 8, 2048) == [[0], [2], [4], [5], [6], [3], [1]]
    assert batching.call_batches(fp32, lengths, 8, 2048) == [[0, 2, 4, 5, 6, 3], [1]]
    # padded to multiples of 32 above one multiple: 90 -> 96 and 128 -> 128 batch, 129 -> 160 runs alone
    assert batching.call_batches(switch, lengths, 8, 2048) == [[0, 2, 4, 5], [6], [3], [1]]
    narrow = replace(switch, quantization={**by_length, "batch_independent_width": 64})
    assert batching.call_batches(narrow, lengths, 8, 2048) == [[0, 2], [4], [5], [6], [3], [1]]
