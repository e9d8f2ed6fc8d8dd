"""The ``fused`` layout: ONNX Runtime's CUDA ``com.microsoft.LongformerAttention``, one node per layer.

The banded layouts (:mod:`.attention`) spell the windowed attention out in plain ONNX ops, which
runs on every provider but costs the CUDA graph thousands of small kernel launches. ONNX Runtime
ships a fused Longformer attention (projections, windowed and global attention in one op) with a
CUDA kernel only; this module emits it, so a ``layout="fused"`` graph runs on the CUDA provider
only and is verified there by the exporter.

The op's contract (ORT's ``contrib_ops/cpu/bert/longformer_attention_base.h`` and its CUDA kernel),
which :func:`reference_longformer_attention` restates in PyTorch:

* inputs: ``input [B, S, D]``; ``weight [D, 3D]`` (q | k | v, "merged" format) and ``bias [3D]``;
  ``mask [B, S]`` added to the scores (0 for real tokens, very negative for padding);
  ``global_weight [D, 3D]`` and ``global_bias [3D]``; ``global [B, S]`` int32 (1 = global token);
  attributes ``num_heads`` and ``window`` (one-sided). Scores are scaled by ``1/sqrt(D / num_heads)``.
* ``S`` must be a multiple of ``2 * window``: the graph pads to the least common multiple of the
  layers' (two-sided) windows (:func:`.model.pad_multiple`).
* The kernel assumes the global tokens are the first tokens of a sequence, at most ``window`` of
  them (VectorHub's encode uses none; the runtime's ``global_attention="cls"`` marks only ``<s>``).
  Other global masks would be computed wrongly, so the graph turns the outputs of those sequences
  into NaN instead (:func:`unsupported_global_rows`): loud rather than silently wrong.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import nn

OP_DOMAIN = "com.microsoft"
OP_TYPE = "LongformerAttention"


def reference_longformer_attention(
    hidden: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor,
    mask: torch.Tensor,
    global_weight: torch.Tensor,
    global_bias: torch.Tensor,
    is_global: torch.Tensor,
    num_heads: int,
    window: int,
) -> torch.Tensor:
    """What ``LongformerAttention`` computes, densely (``[B, S, S]`` scores per head: small inputs only).

    Used to trace the export (the op's output shape and a faithful value) and, on machines without
    CUDA, to run the fused graph through ONNX's reference evaluator in the tests. A local row
    attends the keys within ``window`` plus every global token; a global row attends every token
    with the global projections; padding keys are removed by ``mask``; rows of padding are zero.
    """
    batch, seq_len, embed = hidden.shape
    head_dim = embed // num_heads
    scale = 1.0 / math.sqrt(head_dim)

    def heads(x: torch.Tensor) -> torch.Tensor:
        return x.reshape(batch, seq_len, num_heads, head_dim).transpose(1, 2)

    def attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
        scores = torch.matmul(heads(q), heads(k).transpose(-1, -2)) * scale + mask[:, None, None, :]
        scores = scores.masked_fill(~allowed, float("-inf"))
        return torch.matmul(torch.softmax(scores, dim=-1), heads(v))  # [B, H, S, d]

    glob = is_global != 0
    positions = torch.arange(seq_len, device=hidden.device)
    band = (positions[:, None] - positions[None, :]).abs() <= window
    local_keys = band[None, None] | glob[:, None, None, :]
    q, k, v = (hidden @ weight + bias).split(embed, dim=-1)
    out = attend(q, k, v, local_keys)
    gq, gk, gv = (hidden @ global_weight + global_bias).split(embed, dim=-1)
    out = torch.where(glob[:, None, :, None], attend(gq, gk, gv, torch.ones_like(local_keys)), out)
    out = out.masked_fill(mask[:, None, :, None] != 0, 0.0)
    return out.transpose(1, 2).reshape(batch, seq_len, embed)


class _LongformerAttentionOp(torch.autograd.Function):
    """Traced as one ``com.microsoft.LongformerAttention`` node; runs the reference in PyTorch."""

    @staticmethod
    def forward(ctx, hidden, weight, bias, mask, global_weight, global_bias, is_global, num_heads, window):
        return reference_longformer_attention(
            hidden, weight, bias, mask, global_weight, global_bias, is_global, num_heads, window
        )

    @staticmethod
    def symbolic(g, hidden, weight, bias, mask, global_weight, global_bias, is_global, num_heads, window):
        out = g.op(
            f"{OP_DOMAIN}::{OP_TYPE}",
            hidden,
            weight,
            bias,
            mask,
            global_weight,
            global_bias,
            is_global,
            num_heads_i=int(num_heads),
            window_i=int(window),
        )
        out.setType(hidden.type())  # same shape and type as the input: tells the exporter's shape inference
        return out


def _merged(*linears: nn.Linear) -> tuple[torch.Tensor, torch.Tensor]:
    """``[D, 3D]`` weight and ``[3D]`` bias of three projections, in the op's merged (q | k | v) format."""
    weight = torch.cat([layer.weight.detach().t() for layer in linears], dim=1).contiguous()
    bias = torch.cat([layer.bias.detach() for layer in linears])
    return weight, bias


class FusedInputs(NamedTuple):
    """What every fused layer takes besides its hidden states, built once per forward pass."""

    mask: torch.Tensor  # [B, S] float: 0 for real tokens, very negative for padding
    is_global: torch.Tensor  # [B, S] int32, global tokens first


class FusedLongformerSelfAttention(nn.Module):
    """One layer's ``LongformerSelfAttention`` as a single ``LongformerAttention`` node.

    The six projections are copied into the op's merged weights once (buffers, so the exporter
    writes them as the node's initializers; nothing else in the graph reads them).
    """

    def __init__(self, hf_self_attention: nn.Module, one_sided_window: int) -> None:
        super().__init__()
        hf = hf_self_attention
        self.num_heads = int(hf.num_heads)
        self.window = int(one_sided_window)
        weight, bias = _merged(hf.query, hf.key, hf.value)
        global_weight, global_bias = _merged(hf.query_global, hf.key_global, hf.value_global)
        self.register_buffer("weight", weight)
        self.register_buffer("bias", bias)
        self.register_buffer("global_weight", global_weight)
        self.register_buffer("global_bias", global_bias)

    def forward(self, hidden: torch.Tensor, inputs: FusedInputs) -> torch.Tensor:
        """``hidden [B, S, D]`` with ``S`` a multiple of ``2 * window``."""
        return _LongformerAttentionOp.apply(
            hidden,
            self.weight,
            self.bias,
            inputs.mask,
            self.global_weight,
            self.global_bias,
            inputs.is_global,
            self.num_heads,
            self.window,
        )


def unsupported_global_rows(is_global: torch.Tensor, max_globals: int) -> torch.Tensor:
    """``[B]`` bool: sequences the fused kernel would compute wrongly: a global token after a
    non-global one, or more than ``max_globals`` (the smallest one-sided window) global tokens."""
    not_prefix = (is_global[:, 1:] & ~is_global[:, :-1]).any(dim=1)
    return not_prefix | (is_global.sum(dim=1) > max_globals)
