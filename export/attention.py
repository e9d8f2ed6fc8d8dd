"""Export-friendly Longformer self-attention: the same function as HF's, in plain tensor ops.

HF's ``LongformerSelfAttention`` computes sliding-window attention with ``as_strided`` chunks and
Python branches on data (``is_global_attn``), which the ONNX exporters bake in at trace time. This
module computes the identical function with MatMul / Softmax / Reshape / Pad / Concat / Where /
Gather / TopK only, so one graph is right at every sequence length and batch size.

Notation: ``w`` is the one-sided window of a layer (``attention_window[layer] // 2``), ``L`` the
padded sequence length (here a multiple of ``w``; see smaller query blocks below), ``n = L / w``
blocks, ``q_i, k_j, v_j`` the per-head projections, ``q_i`` already scaled by ``1/sqrt(d_head)``.

Local (windowed) attention, what HF computes for a token ``i`` without global attention::

    keys(i) = { j : |i - j| <= w, j real, j not global }  U  { g : g global }
    out_i   = softmax_j(q_i . k_j) over keys(i)  applied to  v_j

Banded formulation. Split the sequence into ``n`` blocks of ``w`` tokens. A query at position
``i = b*w + r`` (block ``b``, row ``r``) can only see keys in blocks ``b-1, b, b+1``, so stack,
for every block, the keys of those three blocks (``3w`` keys; the sequence is zero-padded by
``w`` on both sides so the first and last blocks have neighbours). Key column ``c`` of block ``b``
is position ``j = (b-1)*w + c``, hence ``j - i = c - w - r`` and the window condition
``|i - j| <= w`` becomes the constant band ``0 <= c - r <= 2w``: a ``[w, 3w]`` boolean that
does not depend on ``L``. Keys outside the sequence, padding keys and global keys are removed by
a per-key mask gathered the same way, so each block computes::

    S_b = Q_b @ K3_b^T + bias_b          [w, 3w]     (batched over batch, heads, blocks)
    bias_b = 0 where band & key_ok_b, else -30000    (exp underflows to exactly 0)

The bias depends only on the masks and the window, so it is built once per forward pass and
window size and shared by all layers with that window.

Smaller query blocks. Nothing above needs the block to be ``w`` long: a block of ``s`` queries
(``s`` dividing ``w``) starting at ``b*s`` sees the ``s + 2w`` keys ``b*s - w ... b*s + s + w - 1``,
and with ``c`` counted from the first of them the band is again ``0 <= c - r <= 2w``. The graph
uses ``s = w / 2`` (:func:`query_block`): ``2.5w`` keys per block instead of ``3w``, a sixth less
score work and memory traffic, which measured faster than both ``s = w`` and ``s = w / 4``. The
padded length then only has to be a multiple of ``s`` (the model pads to the least common multiple
of its layers' query blocks), which also halves the average padding.

Global keys. HF concatenates, before the softmax, the scores of every query against the keys of
the global tokens (regular key projection), and masks the window copies of those keys so each
is counted once. The global positions are found with ``TopK(global_mask, k=G)``, ``G`` the
largest number of global tokens of any sequence in the batch (at least 1, so the graph has no
zero-sized tensors; unused slots are masked). ``TopK`` with a data-dependent ``k`` is emitted
through a small symbolic (:class:`_TopKDynamic`), the only place a value becomes a shape.
The ``G`` global keys are put in front of every block's ``3w`` keys (and the global values in
front of its values), so one MatMul gives the ``[w, G + 3w]`` scores, one Softmax normalises
local and global columns together exactly as HF's concatenation does, and one MatMul applies
``P @ [V_g; V3]``; no score-sized tensor is ever concatenated or sliced.

Global queries. Rows of global tokens are replaced, as in HF, by attention over *all* real
tokens with the separate ``query_global / key_global / value_global`` projections. Computing
``key_global(h)`` and ``value_global(h)`` for all ``L`` tokens would cost two extra dense layers
even when no token is global, so the products are re-associated (exact in real arithmetic)::

    score[g, j] = q'_g . (W_k h_j + b_k) = (q'_g W_k) . h_j + const_g     (const cancels in softmax)
    out_g       = sum_j P[g, j] (W_v h_j + b_v) = W_v (sum_j P[g, j] h_j) + b_v   (rows of P sum to 1)

which costs ``O(G * L * hidden)`` per head, i.e. nothing when ``G`` is 1. The results are
scattered back to their positions (unused slots write to a discarded extra row).

Padding queries are not zeroed as in HF: no real token reads them (padding keys are masked in
every score) and the pooled output ignores them, so their values never reach a result.
"""

from __future__ import annotations

import math
import os

import torch
from torch import nn

# Large enough that exp() underflows to exactly 0 after max-subtraction, small enough for fp16.
MASK_VALUE = -30000.0
# Query block = one-sided window / this (see query_block); 1 gives the plain 3w-key layout.
QUERY_BLOCK_DIVISOR = int(os.environ.get("LONGFORMER2VEC_QUERY_BLOCK_DIVISOR", "2"))


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


def global_slots(is_global: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Positions of global tokens per sequence, padded to the batch maximum (at least one slot).

    Returns ``(index [B, G] int64, valid [B, G] bool)``. Global positions come first (TopK on
    the 0/1 mask minus a tiny position term keeps them in position order, which makes the
    gather deterministic); slots beyond a sequence's own count are marked invalid.
    """
    seq_len = is_global.shape[1]
    flags = is_global.to(torch.float32)
    count = flags.sum(dim=1).max().clamp(min=1.0).to(torch.int64)
    positions = torch.arange(seq_len, device=is_global.device, dtype=torch.float32)
    order_key = flags * 2.0 - positions / (seq_len + 1.0)
    index = _TopKDynamic.apply(order_key, count)
    valid = torch.gather(is_global, 1, index)
    return index, valid


def query_block(window: int) -> int:
    """Queries per block for a one-sided window ``w``: ``w / QUERY_BLOCK_DIVISOR`` when that divides.

    A block of ``s`` queries needs the ``s + 2w`` keys around it, so smaller blocks waste less of
    the score matrix outside the band (``3w`` keys at ``s = w``, ``2.5w`` at ``w / 2``) at the price
    of smaller matrix products; benchmarks/cpu_bench.py measured the choice.
    """
    if QUERY_BLOCK_DIVISOR > 1 and window % QUERY_BLOCK_DIVISOR == 0:
        return window // QUERY_BLOCK_DIVISOR
    return window


def blocks_with_neighbours(
    x: torch.Tensor, window: int, shared: torch.Tensor | None = None, block: int | None = None
) -> torch.Tensor:
    """[B, H, L, X] -> [B, H, n, S + s + 2w, X]: every key (or value) a query block sees.

    ``s = block`` (default ``window``) queries per block, ``n = L / s`` blocks. For block b: the ``S``
    rows of ``shared`` [B, H, S, X] (the global keys or values, the same for every block), then the
    rows ``b*s - w ... b*s + s + w - 1`` (zeros outside the sequence). Built with one Gather of
    precomputed row indices from the zero-padded rows (plus the shared rows), which writes the block
    tensor once; slicing shifted views and concatenating them copied it twice.
    """
    block = block or window
    batch, heads, seq_len, last = x.shape
    num_blocks = seq_len // block
    source = nn.functional.pad(x, (0, 0, window, window))  # padded row p is sequence row p - w
    starts = torch.arange(num_blocks, device=x.device) * block
    index = starts.unsqueeze(1) + torch.arange(block + 2 * window, device=x.device).unsqueeze(0)  # [n, s+2w]
    if shared is not None:
        num_shared = shared.shape[2]
        shared_rows = torch.arange(num_shared, device=x.device) + (seq_len + 2 * window)
        index = torch.cat([shared_rows.unsqueeze(0).expand(num_blocks, num_shared), index], dim=1)
        source = torch.cat([source, shared], dim=2)
    gathered = torch.index_select(source, 2, index.reshape(-1))
    return gathered.reshape(batch, heads, num_blocks, index.shape[1], last)


def mask_bias(allowed: torch.Tensor) -> torch.Tensor:
    """0 where attention is allowed, :data:`MASK_VALUE` elsewhere (added to the scores)."""
    return (1.0 - allowed.to(torch.float32)) * MASK_VALUE


def local_band_bias(
    is_real: torch.Tensor, is_global: torch.Tensor, global_valid: torch.Tensor, window: int
) -> torch.Tensor:
    """Additive mask ``[B, 1, n, s, G + s + 2w]`` for the scores of one window size (``s`` from
    :func:`query_block`).

    Columns follow :func:`blocks_with_neighbours`: the ``G`` global slots (kept when the slot is
    used), then ``s + 2w`` neighbour keys, kept when within the band ``|i - j| <= w`` (the constant
    ``0 <= c - r <= 2w``), inside the sequence, real, and not global (global keys have their own
    columns). Computed once per forward pass and window size, shared by the layers with that window.
    """
    block = query_block(window)
    batch, seq_len = is_real.shape
    num_blocks, num_slots = seq_len // block, global_valid.shape[1]
    rows = torch.arange(block).unsqueeze(1)
    cols = torch.arange(block + 2 * window).unsqueeze(0)
    band = ((cols - rows) >= 0) & ((cols - rows) <= 2 * window)
    key_ok = (is_real & ~is_global).to(torch.float32).reshape(batch, 1, seq_len, 1)
    slot_ok = global_valid.to(torch.float32).reshape(batch, 1, num_slots, 1)
    key_ok = blocks_with_neighbours(key_ok, window, slot_ok, block).reshape(
        batch, 1, num_blocks, 1, num_slots + block + 2 * window
    )
    band = nn.functional.pad(band, (num_slots, 0), value=True)
    return mask_bias((key_ok > 0.5) & band)


class BandedLongformerSelfAttention(nn.Module):
    """Drop-in computation of ``LongformerSelfAttention`` (eval mode) that exports to ONNX.

    Holds references to the HF module's six projections; does not copy weights. Rows of padding
    tokens are not zeroed as HF does: no real token reads them (padding keys are masked
    everywhere) and the pooled output ignores them.
    """

    def __init__(self, hf_self_attention: nn.Module, one_sided_window: int) -> None:
        super().__init__()
        self.query = hf_self_attention.query
        self.key = hf_self_attention.key
        self.value = hf_self_attention.value
        self.query_global = hf_self_attention.query_global
        self.key_global = hf_self_attention.key_global
        self.value_global = hf_self_attention.value_global
        self.num_heads = hf_self_attention.num_heads
        self.head_dim = hf_self_attention.head_dim
        self.window = one_sided_window

    def _split_heads(self, x: torch.Tensor) -> torch.Tensor:
        batch, seq_len, _ = x.shape
        return x.reshape(batch, seq_len, self.num_heads, self.head_dim).transpose(1, 2)

    def forward(
        self,
        hidden: torch.Tensor,
        bias: torch.Tensor,
        key_bias: torch.Tensor,
        is_global: torch.Tensor,
        global_index: torch.Tensor,
        global_valid: torch.Tensor,
    ) -> torch.Tensor:
        """One layer's attention output ``[B, L, D]``.

        ``hidden`` [B, L, D] with L a multiple of the query block; ``bias`` from :func:`local_band_bias`;
        ``key_bias`` [B, 1, 1, L] masks padding keys for the global rows; ``is_global`` [B, L] bool;
        ``global_index`` / ``global_valid`` [B, G] from :func:`global_slots`.
        """
        w = self.window
        block = query_block(w)
        batch, seq_len, embed = hidden.shape
        num_blocks = seq_len // block
        heads, head_dim = self.num_heads, self.head_dim
        scale = 1.0 / math.sqrt(head_dim)

        q = self._split_heads(self.query(hidden) * scale)  # [B, H, L, d]
        k = self._split_heads(self.key(hidden))
        v = self._split_heads(self.value(hidden))

        # ---- each block of s queries against the global keys and its s + 2w neighbours: [B, H, n, s, G + s + 2w]
        num_slots = global_index.shape[1]
        slot_index = global_index.reshape(batch, 1, num_slots, 1).expand(batch, heads, num_slots, head_dim)
        keys = blocks_with_neighbours(k, w, torch.gather(k, 2, slot_index), block)
        values = blocks_with_neighbours(v, w, torch.gather(v, 2, slot_index), block)
        q_blocks = q.reshape(batch, heads, num_blocks, block, head_dim)
        probs = torch.softmax(torch.matmul(q_blocks, keys.transpose(-1, -2)) + bias, dim=-1)
        out = torch.matmul(probs, values).reshape(batch, heads, seq_len, head_dim)
        out = out.transpose(1, 2).reshape(batch, seq_len, embed)

        # ---- rows of global tokens: attention over all real tokens, global projections
        slot_hidden = torch.gather(hidden, 1, global_index.unsqueeze(-1).expand(batch, num_slots, embed))
        q_g = self._split_heads(self.query_global(slot_hidden) * scale)  # [B, H, G, d]
        w_k = self.key_global.weight.reshape(heads, head_dim, embed)  # rows of head h
        w_v = self.value_global.weight.reshape(heads, head_dim, embed)
        q_in_hidden = torch.matmul(q_g, w_k)  # [B, H, G, D]
        g_scores = torch.matmul(q_in_hidden, hidden.unsqueeze(1).transpose(-1, -2)) + key_bias  # [B, H, G, L]
        g_probs = torch.softmax(g_scores, dim=-1)
        mixed_hidden = torch.matmul(g_probs, hidden.unsqueeze(1))  # [B, H, G, D]
        g_out = torch.matmul(mixed_hidden, w_v.transpose(-1, -2))  # [B, H, G, d]
        g_out = g_out + self.value_global.bias.reshape(1, heads, 1, head_dim)
        g_out = g_out.transpose(1, 2).reshape(batch, num_slots, embed)

        # unused slots write into an extra row that is dropped
        target = torch.where(global_valid, global_index, torch.full_like(global_index, seq_len))
        canvas = torch.zeros(batch, seq_len + 1, embed, dtype=out.dtype, device=out.device)
        canvas = canvas.scatter(1, target.unsqueeze(-1).expand(batch, num_slots, embed), g_out)
        return torch.where(is_global.unsqueeze(-1), canvas[:, :seq_len], out)
