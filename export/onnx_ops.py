"""Tensor ops traced as one ONNX node each, where the TorchScript exporter would emit a subgraph.

The exporter turns a shape taken from a tensor (``x.reshape(batch, seq_len, ...)``) into
Shape -> Gather -> Unsqueeze -> Concat nodes in front of every Reshape, once per layer and tensor,
and ``x[:, :, index]`` with a 2-D index into a flattened Gather plus another computed Reshape.
Those nodes cost nothing in arithmetic but each is a kernel call at run time (on CUDA, a host-side
step of the launch sequence), and in longformer-base they were over half of the graph. The ops here
say in one node what is meant: ONNX ``Reshape`` with its ``0`` (keep this dimension) and ``-1``
(infer it) codes, ONNX ``Gather`` with an N-d index, and ``TopK`` with a data-dependent ``k``.
Their ``forward`` is the same function in PyTorch, so eager results (and the parity tests against HF)
are those of the graph.
"""

from __future__ import annotations

import torch


def _onnx_shape(x: torch.Tensor, shape: torch.Tensor) -> list[int]:
    """ONNX Reshape's target (``allowzero=0``): a 0 keeps ``x``'s dimension at that position."""
    return [x.shape[i] if int(dim) == 0 else int(dim) for i, dim in enumerate(shape.tolist())]


class _Reshape(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, shape: torch.Tensor) -> torch.Tensor:
        return x.reshape(_onnx_shape(x, shape))

    @staticmethod
    def symbolic(g, x, shape):
        return g.op("Reshape", x, shape)


def reshape(x: torch.Tensor, shape: list[int] | torch.Tensor) -> torch.Tensor:
    """``x`` reshaped with ONNX's codes: ``reshape(q, [0, -1, heads, head_dim])`` splits the feature axis
    of ``[B, L, D]`` whatever B and L are, with a constant shape and no shape arithmetic in the graph.
    ``shape`` may be an int64 tensor computed once (e.g. holding a block count) and reused by every layer.
    """
    if not isinstance(shape, torch.Tensor):
        shape = torch.tensor(shape, dtype=torch.int64)
    return _Reshape.apply(x, shape)


class _Gather(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, index: torch.Tensor, axis: int) -> torch.Tensor:
        picked = torch.index_select(x, axis, index.reshape(-1))
        return picked.reshape(x.shape[:axis] + index.shape + x.shape[axis + 1 :])

    @staticmethod
    def symbolic(g, x, index, axis):
        return g.op("Gather", x, index, axis_i=axis)


def gather(x: torch.Tensor, index: torch.Tensor, axis: int) -> torch.Tensor:
    """ONNX ``Gather``: ``x``'s slices along ``axis`` at ``index`` (any rank), shape
    ``x.shape[:axis] + index.shape + x.shape[axis + 1:]``; one node, one copy."""
    return _Gather.apply(x, index, axis)


class _TopKDynamic(torch.autograd.Function):
    """``torch.topk`` whose ``k`` is a tensor: traced as ONNX TopK with a dynamic ``k`` input."""

    @staticmethod
    def forward(ctx, scores: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        return torch.topk(scores, int(k.reshape(-1)[0]), dim=1, largest=True, sorted=True).indices

    @staticmethod
    def symbolic(g, scores, k):
        k = g.op("Reshape", k, g.op("Constant", value_t=torch.tensor([1], dtype=torch.int64)))
        _values, indices = g.op("TopK", scores, k, axis_i=1, largest_i=1, sorted_i=1, outputs=2)
        return indices


def topk_indices(scores: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """Indices of the ``k`` (an int64 tensor, data-dependent) largest ``scores`` along axis 1, sorted."""
    return _TopKDynamic.apply(scores, k)
