"""The ``fused`` layout (ONNX Runtime's CUDA-only LongformerAttention): graph wiring checked on the CPU.

ONNX Runtime has no CPU kernel for the op, so these tests run the exported graph through ONNX's
reference evaluator with the op implemented by :func:`reference_longformer_attention` and compare it
with HF eager. That proves everything around the op (weight layout, padding to the kernel's window
multiple, masks, global flags, the guard for global masks the kernel cannot take); whether ORT's
kernel computes the reference is what the exporter's parity check proves on CUDA, where the graph
is exported.
"""

from __future__ import annotations

import json
import shutil
import types
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx.reference import ReferenceEvaluator
from onnx.reference.op_run import OpRun
from transformers import LongformerModel

from longformer2vec import Longformer2Vec
from longformer2vec.contract import sha256_file
from longformer2vec.errors import ModelLoadError
from longformer2vec.export import export_model
from longformer2vec.export.convert import convert_fp16, export_onnx
from longformer2vec.export.fused_attention import OP_DOMAIN, OP_TYPE, reference_longformer_attention
from longformer2vec.export.model import LongformerForExport
from tests.export.test_export import _hf_states, _random_batch, assert_matches_hf

HAS_CUDA = "CUDAExecutionProvider" in ort.get_available_providers()


class LongformerAttention(OpRun):
    """The contrib op for ONNX's reference evaluator."""

    op_domain = OP_DOMAIN

    def _run(self, *inputs, num_heads=None, window=None):
        tensors = [torch.from_numpy(np.array(x)) for x in inputs]
        dtype = tensors[0].dtype  # fp16 graphs: computed in fp32 here, returned in the graph's type
        tensors = [t.float() if t.is_floating_point() else t for t in tensors]
        return (reference_longformer_attention(*tensors, num_heads, window).to(dtype).numpy(),)


@pytest.fixture(scope="module")
def fused_graph(tiny_hf: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    hf_model = LongformerModel.from_pretrained(tiny_hf, add_pooling_layer=False).eval()
    path = tmp_path_factory.mktemp("fused") / "model.onnx"
    export_onnx(LongformerForExport(hf_model, layout="fused"), path)
    return path


def _run_reference(graph_path: Path, ids, mask, glob):
    evaluator = ReferenceEvaluator(str(graph_path), new_ops=[LongformerAttention])
    return evaluator.run(None, {"input_ids": ids, "attention_mask": mask, "global_attention_mask": glob})


def test_one_fused_node_per_layer(fused_graph: Path) -> None:
    graph = onnx.load(str(fused_graph))
    fused = [n for n in graph.graph.node if n.op_type == OP_TYPE]
    assert all(n.domain == OP_DOMAIN for n in fused)
    attrs = [{a.name: a.i for a in n.attribute} for n in fused]
    assert attrs == [{"num_heads": 4, "window": w} for w in (4, 2, 4)]  # windows [8, 4, 8], one-sided
    shapes = {i.name: list(i.dims) for i in graph.graph.initializer}
    # the exporter shares identical initializers (the random model's zero biases) through Identity nodes
    shapes.update({n.output[0]: shapes[n.input[0]] for n in graph.graph.node if n.op_type == "Identity"})
    assert [shapes[n.input[1]] for n in fused] == [[32, 96]] * 3  # merged q | k | v weights
    assert [shapes[n.input[5]] for n in fused] == [[96]] * 3
    assert not [n for n in graph.graph.node if n.op_type in ("Softmax", "TopK")]  # all inside the op
    assert {o.domain: o.version for o in graph.opset_import}[OP_DOMAIN] == 1


@pytest.mark.parametrize(
    ("lengths", "global_rows"),
    [
        ([1], [[]]),
        ([5], [[0]]),
        ([17, 9], [[], [0]]),  # not window multiples; padded batch
        ([128, 60, 3], [[0, 1], [0], []]),  # full length, two global tokens (the kernel's limit here)
    ],
)
def test_fused_graph_matches_hf(tiny_hf: Path, fused_graph: Path, lengths, global_rows) -> None:
    assert_matches_hf(
        tiny_hf, lambda *feeds: _run_reference(fused_graph, *feeds), lengths, global_rows, "fused, "
    )


def test_fused_graph_without_global_tokens(tiny_hf: Path, tmp_path: Path) -> None:
    """``global_tokens=False``: the op still takes its (not optional) global flags, all zero, and the
    graph takes no global_attention_mask."""
    hf_model = LongformerModel.from_pretrained(tiny_hf, add_pooling_layer=False).eval()
    path = tmp_path / "model.onnx"
    graph = export_onnx(LongformerForExport(hf_model, layout="fused", global_tokens=False), path)
    assert [i.name for i in graph.graph.input] == ["input_ids", "attention_mask"]
    evaluator = ReferenceEvaluator(str(path), new_ops=[LongformerAttention])
    for lengths in ([1], [17, 9], [128, 60, 3]):
        assert_matches_hf(
            tiny_hf,
            lambda ids, mask, _glob: evaluator.run(None, {"input_ids": ids, "attention_mask": mask}),
            lengths,
            [[] for _ in lengths],
            "fused without global tokens, ",
        )


def test_unsupported_global_masks_come_out_nan(tiny_hf: Path, fused_graph: Path) -> None:
    """The kernel needs global tokens first and at most `window` of them; other rows are poisoned,
    the rest of the batch is unaffected."""
    rng = np.random.default_rng(7)
    ids, mask, glob = _random_batch(rng, [30, 30, 30, 30], 200, [[4], [0], [0, 1, 2], [0, 1]])
    hidden, pooled = _run_reference(fused_graph, ids, mask, glob)
    assert np.isnan(pooled[0]).all() and np.isnan(pooled[2]).all()  # global after a local; 3 > window 2
    assert np.isfinite(pooled[[1, 3]]).all()
    ref = _hf_states(tiny_hf, ids[[1, 3]], mask[[1, 3]], glob[[1, 3]])
    assert np.abs(hidden[[1, 3]] - ref).max() < 1e-4


def test_fp16_conversion_keeps_the_fused_nodes_intact(
    tiny_hf: Path, fused_graph: Path, tmp_path: Path
) -> None:
    """The fp16 converter turns the op's float inputs to fp16 and leaves the int32 global flags alone."""
    fp16_path = tmp_path / "fp16.onnx"
    graph = convert_fp16(fused_graph, fp16_path)
    types = {i.name: i.data_type for i in graph.graph.initializer}
    types.update({v.name: v.type.tensor_type.elem_type for v in graph.graph.value_info})
    types.update({n.output[0]: types.get(n.input[0]) for n in graph.graph.node if n.op_type == "Identity"})
    for node in (n for n in graph.graph.node if n.op_type == OP_TYPE):
        assert [types.get(name) for name in node.input[1:]] == [onnx.TensorProto.FLOAT16] * 5 + [
            onnx.TensorProto.INT32
        ]
    rng = np.random.default_rng(3)
    ids, mask, glob = _random_batch(rng, [100, 40], 200, [[0], []])
    ref = _hf_states(tiny_hf, ids, mask, glob)
    _, pooled = _run_reference(fp16_path, ids, mask, glob)
    ref_pooled = (ref * mask[..., None]).sum(1) / mask.sum(1, keepdims=True)
    cosines = (
        (pooled * ref_pooled).sum(1) / np.linalg.norm(pooled, axis=1) / np.linalg.norm(ref_pooled, axis=1)
    )
    assert cosines.min() > 0.9999, cosines


def test_fused_export_end_to_end_with_a_stand_in_for_cuda(tiny_hf: Path, tmp_path: Path, monkeypatch) -> None:
    """export_model(layout="fused") as it runs on a CUDA machine, with ONNX's reference evaluator standing
    in for ORT's CUDA session: the parity gate, the fp16 conversion, the labels and the manifest."""

    requested = []

    class ReferenceSession:
        def __init__(self, path, options=None, providers=None) -> None:
            requested.append(providers[0])
            self.evaluator = ReferenceEvaluator(str(path), new_ops=[LongformerAttention])

        def get_providers(self) -> list[str]:
            return ["CUDAExecutionProvider", "CPUExecutionProvider"]

        def get_inputs(self) -> list:
            return [types.SimpleNamespace(name=name) for name in self.evaluator.input_names]

        def run(self, names, feeds):
            return self.evaluator.run(names, feeds)

    monkeypatch.setattr(
        ort, "get_available_providers", lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"]
    )
    monkeypatch.setattr(ort, "InferenceSession", ReferenceSession)
    out = export_model(
        str(tiny_hf), tmp_path / "fused", precision="fp16", layout="fused", progress=lambda _: None
    )
    (manifest,) = json.loads((out / "manifest.json").read_text())["graphs"]
    assert manifest["layout"] == "fused" and manifest["precision"] == "fp16" and manifest["pad_multiple"] == 8
    assert set(manifest["parity"]) == {"fp32 on CUDAExecutionProvider", "fp16 on CUDAExecutionProvider"}
    assert min(r["pooled_min_cosine"] for r in manifest["parity"]["fp16 on CUDAExecutionProvider"]) > 0.999
    graph = onnx.load(str(out / manifest["file"]))
    assert sum(n.op_type == OP_TYPE for n in graph.graph.node) == 3
    # fp32 checked on CUDA with TF32 off (the 1e-3 token gate), then fp16 on CUDA
    assert requested == [("CUDAExecutionProvider", {"use_tf32": "0"}), ("CUDAExecutionProvider", {})]


@pytest.mark.skipif(HAS_CUDA, reason="this onnxruntime has CUDA: the fused export is possible here")
def test_fused_export_needs_cuda(tmp_path: Path, tiny_hf: Path) -> None:
    with pytest.raises(ValueError, match="CUDA kernel only"):
        export_model(str(tiny_hf), tmp_path / "out", precision="fp16", layout="fused")
    with pytest.raises(ValueError, match="int8 graphs are for the CPU"):
        export_model(str(tiny_hf), tmp_path / "out", precision="int8", layout="fused")
    assert not (tmp_path / "out").exists()


def test_runtime_refuses_a_fused_graph_on_the_cpu(
    tmp_path: Path, tiny_fp32_dir: Path, fused_graph: Path
) -> None:
    model_dir = tmp_path / "fused"
    shutil.copytree(tiny_fp32_dir, model_dir)
    manifest = json.loads((model_dir / "manifest.json").read_text())
    manifest["graphs"] = [g for g in manifest["graphs"] if g["global_tokens"]]  # the fused graph takes them
    (graph,) = manifest["graphs"]
    shutil.copy(fused_graph, model_dir / graph["file"])
    graph.update(layout="fused", sha256=sha256_file(model_dir / graph["file"]), pad_multiple=8)
    (model_dir / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelLoadError, match="'fused' graph"):
        Longformer2Vec(str(model_dir), providers=["CPUExecutionProvider"])
