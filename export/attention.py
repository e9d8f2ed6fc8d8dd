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
launch costs: one merged q | k | v projection, one Transpose into ``[3, B, H, L, d]`` heads, and the
keys and values of every block (global slots included) gathered straight from those heads' rows
(:func:`head_rows`). *Per head* (CPU graphs): one chain per head, keys and values gathered straight
from k and v viewed as ``[B * L * H, d]`` rows (:func:`key_rows`) and heads concatenated back on the
feature axis, so no transposed or padded copies of q, k, v are made.

Everything the layers share (bias, key indices, the query blocks' shape, the global slots) is built
once per forward pass (:func:`band_inputs`), and the layers reshape with constant ONNX shapes
(:mod:`.onnx_ops`), so a layer's graph holds its arithmetic and no shape arithmetic: 33 attention
nodes per layer in longformer-base's batched layout after ONNX Runtime's optimizer (18 of them
for the global rows), where traced ``reshape(batch, seq_len, ...)`` calls, separate q, k, v
projections and a copy of k and v with the global keys appended had made it 130.

Global keys. HF concatenates, before the softmax, the scores of every query against the keys of
the global tokens (regular key projection), and masks the window copies of those keys so each
is counted once. The global positions are found with ``TopK(global_mask, k=G)``, ``G`` the
largest number of global tokens of any sequence in the batch (at least 1, so the graph has no
zero-sized tensors; unused slots are masked). ``TopK`` with a data-dependent ``k`` is emitted
through a small symbolic (:func:`.onnx_ops.topk_indices`), the only place a value becomes a shape.
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

which costs ``O(G * L * hidden)`` per head, i.e. nothing when ``G`` is 1. ``q'_g W_k`` and
``W_v (...)`` are per-head products (head ``h`` uses rows ``h*d ... h*d + d - 1`` of ``W_k`` and
``W_v``); they are written as products with the whole 2-D weights, each head's query row zeroed
outside its own features (``head_features``) and each head's output keeping only its own features
before the heads are summed, so the int8 quantizer reaches these weights like any other linear
layer: the graph then reads 1-byte weights instead of two fp32 ``hidden x hidden`` matrices per
layer at every call, global tokens or not (a 16-token input is dominated by reading weights). The
zeroed products cost ``H`` times the arithmetic, ``O(G * H * hidden^2)`` per layer: nothing next
to the layer's own projections. The results are scattered over the local rows of their positions
(an unused slot writes its row's value back).

Without global tokens. A graph exported with ``global_tokens=False`` (what VectorHub's ``encode``
runs: no ``global_attention_mask`` at all) has neither: no slots (``G = 0``, each block's columns are
its ``C`` keys), no TopK, no global rows. In HF's terms it is the ``is_global_attn = False`` branch,
fixed at export time instead of decided per call.

Padding queries are not zeroed as in HF: no real token reads them (padding keys are masked in
every score) and the pooled output ignores them, so their values never reach a result.
"""

from __future__ import annotations

import math
import os
from typing import NamedTuple

import torch
from torch import nn

from .onnx_ops import gather, reshape, topk_indices

# Large enough that exp() underflows to exactly 0 after max-subtraction, small enough for fp16.
MASK_VALUE = -30000.0
# Query block = one-sided window / this (see query_block); 1 gives the plain 3w-key layout.
QUERY_BLOCK_DIVISOR = int(os.environ.get("LONGFORMER2VEC_QUERY_BLOCK_DIVISOR", "2"))


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
    index = topk_indices(order_key, count)
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


def key_columns(global_index: torch.Tensor | None, keys: torch.Tensor, batch: int) -> torch.Tensor:
    """``[B, n, G + C]`` int64: the sequence position each key column of each query block reads, in
    :func:`local_band_bias`'s column order: the global slots' own positions (none in a graph without
    global tokens: ``global_index`` None, ``G = 0``), then ``keys`` (:func:`key_positions`)."""
    num_blocks, width = keys.shape
    rows = keys.unsqueeze(0).expand(batch, num_blocks, width)
    if global_index is None:
        return rows
    slots = global_index.unsqueeze(1).expand(batch, num_blocks, global_index.shape[1])
    return torch.cat([slots, rows], dim=2)


def key_rows(global_index: torch.Tensor | None, keys: torch.Tensor, batch: int, seq_len: int) -> torch.Tensor:
    """``[B * n, G + C]`` int64: the row of the flattened ``[B * L]`` sequence that each key column of
    each query block reads (:func:`key_columns`; per-head layout). Computed once per forward pass and window.
    """
    columns = key_columns(global_index, keys, batch)
    num_blocks, width = columns.shape[1:]
    offsets = (torch.arange(batch, device=keys.device) * seq_len).reshape(batch, 1, 1)
    return (columns + offsets).reshape(batch * num_blocks, width)


def head_rows(
    global_index: torch.Tensor | None, keys: torch.Tensor, batch: int, seq_len: int, num_heads: int
) -> torch.Tensor:
    """``[B, H, n, G + C]`` int64: the row of ``[B, H, L, d]`` viewed as ``[B * H * L, d]`` that each key
    column of each query block of each head reads (:func:`key_columns`; batched layout)."""
    columns = key_columns(global_index, keys, batch)
    planes = torch.arange(batch * num_heads, device=keys.device).reshape(batch, num_heads, 1, 1) * seq_len
    return columns.unsqueeze(1) + planes


def mask_bias(allowed: torch.Tensor) -> torch.Tensor:
    """0 where attention is allowed, :data:`MASK_VALUE` elsewhere (added to the scores)."""
    return (1.0 - allowed.to(torch.float32)) * MASK_VALUE


def local_band_bias(
    is_real: torch.Tensor,
    is_global: torch.Tensor | None,
    global_valid: torch.Tensor | None,
    keys: torch.Tensor,
    window: int,
) -> torch.Tensor:
    """Additive mask ``[B, 1, n, s, G + C]`` for the scores of one window size.

    Columns: the ``G`` global slots (kept when the slot is used), then the ``C`` keys of
    :func:`key_positions`, kept when :func:`in_band` of the query, real, and not global (global keys
    have their own columns). Computed once per forward pass and window size, shared by the layers
    with that window. A graph without global tokens passes ``is_global`` and ``global_valid`` None:
    no slot columns (``G = 0``).
    """
    batch, seq_len = is_real.shape
    num_blocks, width = keys.shape
    block = seq_len // num_blocks
    queries = torch.arange(seq_len, device=keys.device).reshape(num_blocks, block, 1)
    band = in_band(queries, keys.unsqueeze(1), window)  # [n, s, C]
    local_keys = is_real if is_global is None else is_real & ~is_global
    key_ok = torch.index_select(local_keys, 1, keys.reshape(-1)).reshape(batch, num_blocks, 1, width)
    local = band.unsqueeze(0) & key_ok  # [B, n, s, C]
    if global_valid is None:
        return mask_bias(local).unsqueeze(1)
    num_slots = global_valid.shape[1]
    slots = global_valid.reshape(batch, 1, 1, num_slots).expand(batch, num_blocks, block, num_slots)
    return mask_bias(torch.cat([slots, local], dim=3)).unsqueeze(1)


class BandInputs(NamedTuple):
    """What every layer with one window size takes besides its hidden states, built once per forward pass
    (:func:`band_inputs`): no layer repeats index or shape arithmetic, so a layer's graph is its
    arithmetic plus constant-shape Reshapes. ``n`` query blocks of ``s`` queries, ``G`` global slots,
    ``C`` window keys, ``H`` heads of ``d`` features, ``D = H * d``.

    - ``bias``: the scores' additive mask, per head ``[B * n, s, G + C]``, batched ``[B, 1, n, s, G + C]``;
    - ``key_index``: the rows keys and values are gathered from. Per head, ``H`` tensors
      ``[B * n, G + C]``, rows of k (and v) viewed as ``[B * L * H, d]``; batched, two tensors
      ``[B, H, n, G + C]`` (keys, values), rows of the layer's ``[3, B, H, L, d]`` q | k | v heads
      viewed as ``[3 * B * H * L, d]``;
    - ``query_shape``: Reshape target of q into blocks, per head ``[B * n, -1, D]``, batched
      ``[0, 0, 0, n, -1, d]`` (of the q | k | v heads);
    - ``key_bias`` ``[B, 1, 1, L]``: padding keys, for the global rows;
    - ``slot_rows`` ``[B, G, D]`` int64: each global slot's position along the sequence axis;
    - ``slot_valid`` ``[B, G, 1]`` bool: the slot is in use.

    The last three are None in a graph without global tokens (no slots, ``G = 0``).
    """

    bias: torch.Tensor
    key_index: tuple[torch.Tensor, ...]
    query_shape: torch.Tensor
    key_bias: torch.Tensor | None = None
    slot_rows: torch.Tensor | None = None
    slot_valid: torch.Tensor | None = None


def _dims(x: torch.Tensor, first: int, last: int) -> torch.Tensor:
    """``x.shape[first:last]`` as an int64 tensor (traced as Shape + Slice, so it follows the input)."""
    return torch._shape_as_tensor(x)[first:last].to(torch.int64)


def band_inputs(
    is_real: torch.Tensor,
    is_global: torch.Tensor | None,
    windows: list[int],
    num_heads: int,
    head_dim: int,
    per_head: bool,
) -> dict[int, BandInputs]:
    """:class:`BandInputs` per one-sided window, for inputs of padded length ``L`` (a multiple of every
    window's query block, or at most one block); ``is_global`` None for a graph without global tokens."""
    batch, seq_len = is_real.shape
    embed = num_heads * head_dim
    global_index = global_valid = None
    shared = {}
    if is_global is not None:
        global_index, global_valid = global_slots(is_global)
        num_slots = global_index.shape[1]
        shared = {
            "key_bias": mask_bias(is_real).unsqueeze(1).unsqueeze(1),
            "slot_rows": global_index.unsqueeze(-1).expand(batch, num_slots, embed),
            "slot_valid": global_valid.unsqueeze(-1),
        }
    inputs = {}
    for w in windows:
        keys = key_positions(seq_len, w, is_real.device)
        bias = local_band_bias(is_real, is_global, global_valid, keys, w)
        if per_head:
            rows = key_rows(global_index, keys, batch, seq_len) * num_heads
            key_index = tuple(rows + head for head in range(num_heads))
            bias = bias.reshape(rows.shape[0], -1, rows.shape[1])
            query_shape = torch.cat([_dims(rows, 0, 1), torch.tensor([-1, embed])])
        else:
            rows = head_rows(global_index, keys, batch, seq_len, num_heads)
            plane = _dims(is_real, 0, 2).prod() * num_heads  # B * H * L rows of d: q's, then k's, then v's
            key_index = (rows + plane, rows + 2 * plane)
            query_shape = torch.cat(
                [torch.tensor([0, 0, 0]), _dims(keys, 0, 1), torch.tensor([-1, head_dim])]
            )
        inputs[w] = BandInputs(bias, key_index, query_shape, **shared)
    return inputs


class BandedLongformerSelfAttention(nn.Module):
    """Drop-in computation of ``LongformerSelfAttention`` (eval mode) that exports to ONNX.

    Holds references to the HF projections it multiplies by at run time (key and value in the per-head
    layout, global key and value in both) and copies (buffers, written to the graph in their place)
    of the others: the query and global query projections with the ``1/sqrt(d)`` score scale folded
    in, and for the batched layout the query, key and value projections merged into one ``[3D, D]``,
    so a layer runs one MatMul and one Add for all three and no scale Mul. With ``global_tokens=False``
    (a graph without the ``global_attention_mask`` input) the global rows and their projections are
    left out altogether: what VectorHub's ``encode`` computes, with 18-22 fewer nodes per layer.
    Rows of padding tokens are not zeroed as HF does: no real token reads them (padding keys are
    masked everywhere) and the pooled output ignores them.
    """

    def __init__(
        self,
        hf_self_attention: nn.Module,
        one_sided_window: int,
        per_head: bool = False,
        global_tokens: bool = True,
    ) -> None:
        super().__init__()
        hf = hf_self_attention
        self.per_head = per_head
        self.global_tokens = global_tokens
        self.num_heads = int(hf.num_heads)
        self.head_dim = int(hf.head_dim)
        self.window = one_sided_window
        scale = 1.0 / math.sqrt(self.head_dim)
        if global_tokens:
            self.key_global = hf.key_global
            self.value_global = hf.value_global
            # [H, D]: 1 where feature f belongs to head h (the global products with whole 2-D weights)
            features = torch.arange(self.num_heads * self.head_dim) // self.head_dim
            heads = torch.arange(self.num_heads).unsqueeze(1)
            self.register_buffer("head_features", (features == heads).float())
            with torch.no_grad():  # the 1/sqrt(d) folded into the projection, as for the local queries
                self.register_buffer("query_global_weight", hf.query_global.weight * scale)
                self.register_buffer("query_global_bias", hf.query_global.bias * scale)
        with torch.no_grad():  # the queries' 1/sqrt(d) folded into their projections: no Mul node per layer
            query_weight, query_bias = hf.query.weight * scale, hf.query.bias * scale
            if per_head:
                self.key = hf.key
                self.value = hf.value
                self.register_buffer("query_weight", query_weight)
                self.register_buffer("query_bias", query_bias)
            else:
                self.register_buffer("qkv_weight", torch.cat([query_weight, hf.key.weight, hf.value.weight]))
                self.register_buffer("qkv_bias", torch.cat([query_bias, hf.key.bias, hf.value.bias]))

    def _local_batched(self, hidden: torch.Tensor, inputs: BandInputs) -> torch.Tensor:
        """Windowed attention of every head at once, ``[B, L, D]``: each block of s queries against the
        global keys and its C neighbour keys, scores ``[B, H, n, s, G + C]``. Fewest nodes (what the
        CUDA graph wants): one MatMul for q | k | v, one Transpose into ``[3, B, H, L, d]`` heads, and
        keys and values gathered straight from those heads' rows, global slots included, so no
        per-tensor head split, key concatenation or scale Mul; but the score tensor of all heads goes
        through memory between ops."""
        heads, head_dim = self.num_heads, self.head_dim
        qkv = nn.functional.linear(hidden, self.qkv_weight, self.qkv_bias)  # [B, L, 3D], q scaled
        qkv = reshape(qkv, [0, -1, 3, heads, head_dim]).permute(2, 0, 3, 1, 4)  # [3, B, H, L, d]
        q_blocks = reshape(qkv, inputs.query_shape)[0]  # [B, H, n, s, d]
        rows = reshape(qkv, [-1, head_dim])  # [3 * B * H * L, d]
        key_blocks = gather(rows, inputs.key_index[0], 0)  # [B, H, n, G + C, d]
        value_blocks = gather(rows, inputs.key_index[1], 0)
        probs = torch.softmax(torch.matmul(q_blocks, key_blocks.transpose(-1, -2)) + inputs.bias, dim=-1)
        out = torch.matmul(probs, value_blocks)  # [B, H, n, s, d]
        return reshape(out.permute(0, 2, 3, 1, 4), [0, -1, heads * head_dim])  # [B, n, s, H, d] -> [B, L, D]

    def _local_per_head(self, hidden: torch.Tensor, inputs: BandInputs) -> torch.Tensor:
        """The same windowed attention as :meth:`_local_batched`, one chain of ops per head (CPU layout).

        Keys and values are gathered straight from ``k`` and ``v`` viewed as ``[B * L * H, d]`` rows
        (:attr:`BandInputs.key_index`), the queries split into heads by one Split, and the heads
        concatenated back on the feature axis, so the layer makes no transposed copies of q, k, v and
        the output. Measured faster on the CPU (benchmarks/RESULTS.md); more nodes, so the fp16 CUDA
        graph, which pays per kernel launch, keeps the batched layout.
        """
        head_dim = self.head_dim
        q = nn.functional.linear(hidden, self.query_weight, self.query_bias)  # [B, L, D], scaled
        k = self.key(hidden)
        v = self.value(hidden)
        q_heads = reshape(q, inputs.query_shape).split(head_dim, dim=-1)  # H x [B * n, s, d]
        k_rows, v_rows = reshape(k, [-1, head_dim]), reshape(v, [-1, head_dim])  # [B * L * H, d]
        outs = []
        for q_h, index in zip(q_heads, inputs.key_index, strict=True):
            k_h, v_h = gather(k_rows, index, 0), gather(v_rows, index, 0)  # [B * n, G + C, d]
            probs = torch.softmax(torch.matmul(q_h, k_h.transpose(-1, -2)) + inputs.bias, dim=-1)
            outs.append(torch.matmul(probs, v_h))
        return torch.cat(outs, dim=-1).reshape_as(q)

    def forward(self, hidden: torch.Tensor, inputs: BandInputs) -> torch.Tensor:
        """One layer's attention output ``[B, L, D]``, ``hidden`` [B, L, D] with L a multiple of the
        query block, or at most one block; ``inputs`` from :func:`band_inputs`."""
        out = (self._local_per_head if self.per_head else self._local_batched)(hidden, inputs)
        if not self.global_tokens:
            return out

        # ---- rows of global tokens: attention over all real tokens, global projections
        slot_hidden = torch.gather(hidden, 1, inputs.slot_rows)  # [B, G, D]
        q_g = nn.functional.linear(slot_hidden, self.query_global_weight, self.query_global_bias)  # scaled
        q_heads = q_g.unsqueeze(2) * self.head_features  # [B, G, H, D]: row h keeps head h's features
        q_in_hidden = torch.matmul(q_heads, self.key_global.weight)  # [B, G, H, D]
        keys = hidden.unsqueeze(1)  # [B, 1, L, D]
        g_scores = torch.matmul(q_in_hidden, keys.transpose(-1, -2)) + inputs.key_bias  # [B, G, H, L]
        mixed_hidden = torch.matmul(torch.softmax(g_scores, dim=-1), keys)  # [B, G, H, D]
        every_head = torch.matmul(mixed_hidden, self.value_global.weight.t())  # [B, G, H, D]
        g_out = (every_head * self.head_features).sum(dim=2) + self.value_global.bias  # [B, G, D]

        # written over the local rows of the global tokens; an unused slot writes its row's own local
        # value back (TopK's positions are distinct, so no two slots write the same row)
        g_out = torch.where(inputs.slot_valid, g_out, torch.gather(out, 1, inputs.slot_rows))
        return out.scatter(1, inputs.slot_rows, g_out)
