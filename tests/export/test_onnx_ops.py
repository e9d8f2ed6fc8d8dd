"""The one-node ONNX ops of export/onnx_ops.py: PyTorch (eager, what parity is checked on) and ONNX
Runtime (what ships) agree, at shapes other than the traced ones."""

from __future__ import annotations

import io
import warnings

import numpy as np
import onnx
import onnxruntime as ort
import torch

from longformer2vec.export.onnx_ops import gather, reshape, topk_indices


class _Ops(torch.nn.Module):
    def forward(self, x: torch.Tensor, rows: torch.Tensor, index: torch.Tensor, flags: torch.Tensor):
        split = reshape(x, [0, -1, 2, 2])  # keep B, infer L, split the last axis
        blocks = reshape(x, torch.cat([torch._shape_as_tensor(rows)[:1], torch.tensor([-1, 4])]))
        picked = gather(x, index, 1)  # [B, *index.shape, D]
        count = flags.sum(dim=1).max().reshape(1)
        positions = torch.arange(flags.shape[1], dtype=torch.float32)
        scores = flags.to(torch.float32) * 2 - positions / (flags.shape[1] + 1)  # no ties: first first
        return split, blocks, picked, topk_indices(scores, count)


def test_ops_match_between_pytorch_and_onnx_runtime() -> None:
    module = _Ops()
    traced = (torch.zeros(2, 3, 4), torch.zeros(6, 1), torch.tensor([[0, 2]]), torch.tensor([[1, 0, 1]]))
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            traced,
            buffer,
            dynamo=False,
            opset_version=17,
            input_names=["x", "rows", "index", "flags"],
            dynamic_axes={
                "x": {0: "b", 1: "l"},
                "rows": {0: "r"},
                "index": {0: "i", 1: "j"},
                "flags": {0: "f", 1: "g"},
            },
        )
    graph = onnx.load_from_string(buffer.getvalue())
    ops = [node.op_type for node in graph.graph.node]
    assert ops.count("Reshape") >= 2 and "Gather" in ops and "TopK" in ops
    session = ort.InferenceSession(buffer.getvalue(), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.standard_normal((3, 5, 4)).astype(np.float32))
    rows = torch.zeros(15, 1)
    index = torch.tensor([[4, 0, 1], [2, 2, 3]])
    flags = torch.tensor([[0, 1, 1, 0, 1], [1, 0, 0, 0, 0]])
    got = session.run(
        None, {"x": x.numpy(), "rows": rows.numpy(), "index": index.numpy(), "flags": flags.numpy()}
    )
    expected = module(x, rows, index, flags)
    assert [g.shape for g in got] == [(3, 5, 2, 2), (15, 1, 4), (3, 2, 3, 4), (2, 3)]
    for g, e in zip(got, expected, strict=True):
        np.testing.assert_array_equal(g, e.numpy())
    np.testing.assert_array_equal(got[3][0], [1, 2, 4])  # the flagged positions, first first
