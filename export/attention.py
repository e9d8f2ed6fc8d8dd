"""Export-friendly Longformer self-attention: the same function as HF's, in plain tensor ops.

HF's ``LongformerSelfAttention`` computes sliding-window attention with ``as_strided`` chunks and
Python branches on data (``is_global_attn``), which the ONNX exporters bake in at trace time. This
module computes the identical function with MatMul / Softmax / Reshape / Concat / Where /
Gather / ScatterElements / TopK only, so one graph is right at every sequence length and batch size.

Notation: ``w`` is the one-sided window of a layer (``attention_window[layer] // 2``), ``L`` the
padded sequence length (a multiple of the query block ``s``), ``q_i, k_j, v_j`` the per-head
projections, ``q_i`` already scaled by ``1/sqrt(d_head)``.

Local (windowed) attention, what HF computes for a token ``i`` without global attention::

    keys(i) = { j : |i - j| <= w, j real, j not global }  U  { g : g global }
    out_i   = softmax_j(q_i . k_j) over keys(i)  applied to  v_j

Banded formulation. Split the (padded) sequence into ``n = L / s`` query blocks of ``s`` tokens
(``s = w / 2``, :func:`query_block`). A query at position ``i`` in block ``b`` only sees keys
within ``w`` of its block, i.e. among the ``s + 2w`` positions ``b*s - w ... b*s + s + w - 1``.
Each block therefore reads one run of ``C = min(L, s + 2w)`` consecutive key positions,
starting at ``clamp(b*s - w, 0, L - C)`` (:func:`key_positions`): away from the ends that is
exactly the run above; at the ends it is shifted inward rather than reaching past the sequence,
and an input shorter than ``s + 2w`` is attended densely (every block reads all ``L`` keys, so a
128-token input scores 128 keys per query, not 640). Keys outside the query's own window
(:func:`in_band`, ``|i - j| <= w``), padding keys and global keys are removed by an additive mask,
so each block computes::

    S_b = Q_b @ K_b^T + bias_b          [s, C]     (batched over batch, heads, blocks)
    bias_b = 0 where |i - j| <= w & key j real & not global, else -30000 (exp underflows to 0)

The bias depends only on the masks and the window, so it is built once per forward pass and
window size and shared by all layers with that window (:func:`local_band_bias`). Query blocks of
``w / 2`` rather than ``w`` mean ``2.5w`` keys per block instead of ``3w``, a sixth less score
work and memory traffic, which measured faster than both ``w`` and ``w / 4``; the padded length
only has to be a multiple of ``s`` (the model pads to the least common multiple of its layers'
query blocks), and an input no longer than ``s`` needs no padding at all: it is one block of ``L``
queries (``n = 1``), which every function here handles as it is.

Two layouts of the same ops (:class:`BandedLongformerSelfAttention`). *Batched*: every head at
once, scores ``[B, H, n, s, G + C]``, fewest nodes, used by the fp16 CUDA graph where each kernel
launch costs. *Per head* (CPU graphs): one chain per head, keys and values gathered straight from
each head's ``[B * L, d]`` rows (:func:`key_rows`) and heads concatenated back on the feature axis,
so no transposed or padded copies of q, k, v are made.

Global keys. HF concatenates, before the softmax, the scores of every query against the keys of
the global tokens (regular key projection), and masks the window copies of those keys so each
is counted once. The global positions are found with ``TopK(global_mask, k=G)``, ``G`` the
largest number of global tokens of any sequence in the batch (at least 1, so the graph has no
zero-sized tensors; unused slots are masked). ``TopK`` with a data-dependent ``k`` is emitted
through a small symbolic (:class:`_TopKDynamic`), the only place a value becomes a shape.
The ``G`` global keys are put in front of every block's ``C`` keys (and the global values in
front of its values), so one MatMul gives the ``[s, G + C]`` scores, one Softmax normalises
local and global columns together exactly as HF's concatenation does, and one MatMul applies
``P @ [V_g; V_b]``; no score-sized tensor is ever concatenated or sliced.

Global queries. Rows of global tokens are replaced, as in HF, by attention over *all* real
tokens with the separate ``query_global / key_global / value_global`` projections. Computing
``key_global(h)`` and ``value_global(h)`` for all ``L`` tokens would cost two extra dense layers
even when no token is global, so the products are re-associated (exact in real arithmetic)::

    score[g, j] = q'_g . (W_k h_j + b_k) = (q'_g W_k) . h_j + const_g     (const cancels in softmax)
    out_g       = sum_j P[g, j] (W_v h_j + b_v) = W_v (sum_j P[g, j] h_j) + b_v   (rows of P sum to 1)

which costs ``O(G * L * hidden)`` per head, i.e. nothing when ``G`` is 1. The results are
scattered over the local rows of their positions (an unused slot writes its row's value back).

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


def key_positions(seq_len: int, window: int, device: torch.device | None = None) -> torch.Tensor:
    """``[n, C]`` int64: the sequence positions whose keys each query block reads, ``C = min(L, s + 2w)``.

    Block ``b`` (queries ``b*s ... b*s + s - 1``) reads the ``C`` consecutive positions from
    ``clamp(b*s - w, 0, L - C)``. That run holds every position within ``w`` of the block that is
    inside the sequence: away from the ends it is exactly ``b*s - w ... b*s + s + w - 1``; at the
    ends it is shifted inward instead of reaching past the sequence, and when the whole sequence is
    shorter than ``s + 2w`` every block reads all ``L`` positions (dense attention, no padding keys:
    a 128-token input scores 128 keys per query, not 640). :func:`local_band_bias` masks the
    positions outside each query's own window.
    """
    block = query_block(window)
    positions = torch.arange(seq_len, device=device)
    length = positions[-1] + 1  # a tensor, so everything below follows the traced length
    width = torch.clamp(length, max=block + 2 * window)
    starts = torch.minimum(torch.clamp(positions[::block] - window, min=0), length - width)
    return starts.unsqueeze(1) + torch.arange(width, device=device).unsqueeze(0)


def in_band(query: torch.Tensor, key: torch.Tensor, window: int) -> torch.Tensor:
    """Longformer's sliding window: a query at position ``i`` sees the key at ``j`` iff ``|i - j| <= w``."""
    return (query - key).abs() <= window


def blocks_with_neighbours(
    x: torch.Tensor, keys: torch.Tensor, shared: torch.Tensor | None = None
) -> torch.Tensor:
    """[B, H, L, X] -> [B, H, n, S + C, X]: every key (or value) a query block sees (batched layout).

    For block b: the ``S`` rows of ``shared`` [B, H, S, X] (the global keys or values, the same for
    every block), then the rows ``keys[b]`` (:func:`key_positions`). Built with one Gather, which
    writes the block tensor once.
    """
    batch, heads, seq_len, last = x.shape
    index, source = keys, x
    if shared is not None:
        num_shared = shared.shape[2]
        shared_rows = torch.arange(num_shared, device=x.device) + seq_len
        index = torch.cat([shared_rows.unsqueeze(0).expand(keys.shape[0], num_shared), keys], dim=1)
        source = torch.cat([x, shared], dim=2)
    gathered = torch.index_select(source, 2, index.reshape(-1))
    return gathered.reshape(batch, heads, keys.shape[0], index.shape[1], last)


def key_rows(global_index: torch.Tensor, keys: torch.Tensor, seq_len: int) -> torch.Tensor:
    """``[B * n, G + C]`` int64: the row of the flattened ``[B * L]`` sequence that each key column of
    each query block reads, in :func:`local_band_bias`'s column order (per-head layout): the global
    slots' own positions, then ``keys`` (:func:`key_positions`). Computed once per forward pass and window.
    """
    batch, num_slots = global_index.shape
    num_blocks, width = keys.shape
    rows = keys.unsqueeze(0).expand(batch, num_blocks, width)
    slots = global_index.unsqueeze(1).expand(batch, num_blocks, num_slots)
    offsets = (torch.arange(batch, device=keys.device) * seq_len).reshape(batch, 1, 1)
    return (torch.cat([slots, rows], dim=2) + offsets).reshape(batch * num_blocks, num_slots + width)


def mask_bias(allowed: torch.Tensor) -> torch.Tensor:
    """0 where attention is allowed, :data:`MASK_VALUE` elsewhere (added to the scores)."""
    return (1.0 - allowed.to(torch.float32)) * MASK_VALUE


def local_band_bias(
    is_real: torch.Tensor,
    is_global: torch.Tensor,
    global_valid: torch.Tensor,
    keys: torch.Tensor,
    window: int,
) -> torch.Tensor:
    """Additive mask ``[B, 1, n, s, G + C]`` for the scores of one window size.

    Columns: the ``G`` global slots (kept when the slot is used), then the ``C`` keys of
    :func:`key_positions`, kept when :func:`in_band` of the query, real, and not global (global keys
    have their own columns). Computed once per forward pass and window size, shared by the layers
    with that window.
    """
    batch, seq_len = is_real.shape
    num_blocks, width = keys.shape
    block = seq_len // num_blocks
    num_slots = global_valid.shape[1]
    queries = torch.arange(seq_len, device=keys.device).reshape(num_blocks, block, 1)
    band = in_band(queries, keys.unsqueeze(1), window)  # [n, s, C]
    key_ok = torch.index_select(is_real & ~is_global, 1, keys.reshape(-1)).reshape(
        batch, num_blocks, 1, width
    )
    local = band.unsqueeze(0) & key_ok  # [B, n, s, C]
    slots = global_valid.reshape(batch, 1, 1, num_slots).expand(batch, num_blocks, block, num_slots)
    return mask_bias(torch.cat([slots, local], dim=3)).unsqueeze(1)


class BandedLongformerSelfAttention(nn.Module):
    """Drop-in computation of ``LongformerSelfAttention`` (eval mode) that exports to ONNX.

    Holds references to the HF module's six projections; does not copy weights. Rows of padding
    tokens are not zeroed as HF does: no real token reads them (padding keys are masked
    everywhere) and the pooled output ignores them.
    """

    def __init__(self, hf_self_attention: nn.Module, one_sided_window: int, per_head: bool = False) -> None:
        super().__init__()
        self.per_head = per_head
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

    def _local_batched(
        self,
        q: torch.Tensor,
        k: torch.Tensor,
        v: torch.Tensor,
        bias: torch.Tensor,
        keys: torch.Tensor,
        global_index: torch.Tensor,
    ) -> torch.Tensor:
        """Windowed attention of every head at once, ``[B, L, D]``: each block of s queries against the
        global keys and its C neighbour keys, scores ``[B, H, n, s, G + C]``. Fewest nodes (what the
        CUDA graph wants), but the score tensor of all heads goes through memory between ops."""
        batch, seq_len, embed = q.shape
        heads, head_dim = self.num_heads, self.head_dim
        num_blocks = keys.shape[0]
        q, k, v = self._split_heads(q), self._split_heads(k), self._split_heads(v)  # [B, H, L, d]
        num_slots = global_index.shape[1]
        slot_index = global_index.reshape(batch, 1, num_slots, 1).expand(batch, heads, num_slots, head_dim)
        key_blocks = blocks_with_neighbours(k, keys, torch.gather(k, 2, slot_index))
        value_blocks = blocks_with_neighbours(v, keys, torch.gather(v, 2, slot_index))
        q_blocks = q.reshape(batch, heads, num_blocks, seq_len // num_blocks, head_dim)
        probs = torch.softmax(torch.matmul(q_blocks, key_blocks.transpose(-1, -2)) + bias, dim=-1)
        out = torch.matmul(probs, value_blocks).reshape(batch, heads, seq_len, head_dim)
        return out.transpose(1, 2).reshape(batch, seq_len, embed)

    def _local_per_head(
        self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, bias: torch.Tensor, rows: torch.Tensor
    ) -> torch.Tensor:
        """The same windowed attention as :meth:`_local_batched`, one chain of ops per head (CPU layout).

        Keys and values are gathered straight from the ``[B * L, d]`` rows of each head by
        :func:`key_rows`, and the heads are concatenated back on the feature axis, so the layer makes
        no transposed copies of q, k, v and the output; the only reshapes whose shape follows the input
        are q's and the bias's, once per layer. Measured faster on the CPU (benchmarks/RESULTS.md); twice
        the nodes, so the fp16 CUDA graph, which pays per kernel launch, keeps the batched layout.
        """
        batch, seq_len, embed = q.shape
        head_dim = self.head_dim
        num_rows = rows.shape[0]  # B * n query blocks; a block holds s queries, or all L when L < s
        bias = bias.reshape(num_rows, -1, rows.shape[1])  # [B * n, s, G + C]
        q_blocks = q.reshape(num_rows, -1, embed)  # [B * n, s, D]
        outs = []
        for head in range(self.num_heads):
            cols = slice(head * head_dim, (head + 1) * head_dim)
            q_h = q_blocks[:, :, cols]  # [B * n, s, d]
            k_h = k[:, :, cols].reshape(-1, head_dim)[rows]  # [B * n, G + C, d]
            v_h = v[:, :, cols].reshape(-1, head_dim)[rows]
            probs = torch.softmax(torch.matmul(q_h, k_h.transpose(-1, -2)) + bias, dim=-1)
            outs.append(torch.matmul(probs, v_h))
        return torch.cat(outs, dim=-1).reshape(batch, seq_len, embed)

    def forward(
        self,
        hidden: torch.Tensor,
        bias: torch.Tensor,
        keys: torch.Tensor,
        rows: torch.Tensor | None,
        key_bias: torch.Tensor,
        global_index: torch.Tensor,
        global_valid: torch.Tensor,
    ) -> torch.Tensor:
        """One layer's attention output ``[B, L, D]``.

        ``hidden`` [B, L, D] with L a multiple of the query block, or at most one block; ``bias`` from
        :func:`local_band_bias`;
        ``keys`` from :func:`key_positions`; ``rows`` from :func:`key_rows` (per-head layout only);
        ``key_bias`` [B, 1, 1, L] masks padding keys for the global rows; ``global_index`` /
        ``global_valid`` [B, G] from :func:`global_slots`.
        """
        batch, _, embed = hidden.shape
        heads, head_dim = self.num_heads, self.head_dim
        scale = 1.0 / math.sqrt(head_dim)

        q = self.query(hidden) * scale  # [B, L, D]
        k = self.key(hidden)
        v = self.value(hidden)
        if self.per_head:
            out = self._local_per_head(q, k, v, bias, rows)
        else:
            out = self._local_batched(q, k, v, bias, keys, global_index)

        # ---- rows of global tokens: attention over all real tokens, global projections
        num_slots = global_index.shape[1]
        slot_rows = global_index.unsqueeze(-1).expand(batch, num_slots, embed)
        slot_hidden = torch.gather(hidden, 1, slot_rows)
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

        # written over the local rows of the global tokens; an unused slot writes its row's own local
        # value back (TopK's positions are distinct, so no two slots write the same row)
        g_out = torch.where(global_valid.unsqueeze(-1), g_out, torch.gather(out, 1, slot_rows))
        return out.scatter(1, slot_rows, g_out)
