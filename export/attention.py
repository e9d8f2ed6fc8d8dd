"""Export-friendly Longformer self-attention: the same function as HF's, in plain tensor ops.

HF's ``LongformerSelfAttention`` computes sliding-window attention with ``as_strided`` chunks and
Python branches on data (``is_global_attn``), which the ONNX exporters bake in at trace time. This
module computes the identical function with MatMul / Softmax / Reshape / Pad / Concat / Where /
Gather / TopK only, so one graph is right at every sequence length and batch size.

Notation: ``w`` is the one-sided window of a layer (``attention_window[layer] // 2``), ``L`` the
padded sequence length (a multiple of ``w``; the model pads once for all layers), ``n = L / w``
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

    S_b = Q_b @ K3_b^T           [w, 3w]     (batched over batch, heads, blocks)
    S_b = where(band & key_ok_b, S_b, -inf_like)

Global keys. HF concatenates, before the softmax, the scores of every query against the keys of
the global tokens (regular key projection), and masks the window copies of those keys so each
is counted once. The global positions are found with ``TopK(global_mask, k=G)``, ``G`` the
largest number of global tokens of any sequence in the batch (at least 1, so the graph has no
zero-sized tensors; unused slots are masked). ``TopK`` with a data-dependent ``k`` is emitted
through a small symbolic (:class:`_TopKDynamic`), the only place a value becomes a shape.
The softmax runs over ``[G + 3w]`` columns and the output is ``P_local @ V3 + P_global @ V_g``.

Global queries. Rows of global tokens are replaced, as in HF, by attention over *all* real
tokens with the separate ``query_global / key_global / value_global`` projections. Computing
``key_global(h)`` and ``value_global(h)`` for all ``L`` tokens would cost two extra dense layers
even when no token is global, so the products are re-associated (exact in real arithmetic)::

    score[g, j] = q'_g . (W_k h_j + b_k) = (q'_g W_k) . h_j + const_g     (const cancels in softmax)
    out_g       = sum_j P[g, j] (W_v h_j + b_v) = W_v (sum_j P[g, j] h_j) + b_v   (rows of P sum to 1)

which costs ``O(G * L * hidden)`` per head, i.e. nothing when ``G`` is 1. The results are
scattered back to their positions (unused slots write to a discarded extra row).

Padding queries get zero attention output, as in HF (their probabilities are zeroed).
"""

from __future__ import annotations

import math

import torch
from torch import nn

# Large enough that exp() underflows to exactly 0 after max-subtraction, small enough for fp16.
MASK_VALUE = -30000.0


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


class BandedLongformerSelfAttention(nn.Module):
    """Drop-in computation of ``LongformerSelfAttention`` (eval mode) that exports to ONNX.

    Holds references to the HF module's six projections; does not copy weights.
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
        w = one_sided_window
        rows = torch.arange(w).unsqueeze(1)
        cols = torch.arange(3 * w).unsqueeze(0)
        self.register_buffer("band", ((cols - rows) >= 0) & ((cols - rows) <= 2 * w), persistent=False)

    def _blocks_with_neighbours(self, x: torch.Tensor, num_blocks: torch.Tensor) -> torch.Tensor:
        """[B, H, L, X] -> [B, H, n, 3w, X]: for block b the rows of blocks b-1, b, b+1."""
        w = self.window
        batch, heads, _, last = x.shape
        padded = nn.functional.pad(x, (0, 0, w, w))
        parts = [padded[:, :, s * w : padded.shape[2] - (2 - s) * w] for s in range(3)]
        parts = [p.reshape(batch, heads, num_blocks, w, last) for p in parts]
        return torch.cat(parts, dim=3)

    def _split_heads(self, x: torch.Tensor) -> torch.Tensor:
        batch, seq_len, _ = x.shape
        return x.reshape(batch, seq_len, self.num_heads, self.head_dim).transpose(1, 2)

    def forward(
        self,
        hidden: torch.Tensor,
        is_real: torch.Tensor,
        is_global: torch.Tensor,
        global_index: torch.Tensor,
        global_valid: torch.Tensor,
    ) -> torch.Tensor:
        """hidden [B, L, D] with L a multiple of the window; masks [B, L] bool; slots [B, G]."""
        w = self.window
        batch, seq_len, embed = hidden.shape
        num_blocks = seq_len // w
        heads, head_dim = self.num_heads, self.head_dim
        scale = 1.0 / math.sqrt(head_dim)

        q = self._split_heads(self.query(hidden) * scale)  # [B, H, L, d]
        k = self._split_heads(self.key(hidden))
        v = self._split_heads(self.value(hidden))

        # ---- local band: [B, H, n, w, 3w]
        q_blocks = q.reshape(batch, heads, num_blocks, w, head_dim)
        k3 = self._blocks_with_neighbours(k, num_blocks)
        v3 = self._blocks_with_neighbours(v, num_blocks)
        local_scores = torch.matmul(q_blocks, k3.transpose(-1, -2))
        key_ok = (is_real & ~is_global).to(hidden.dtype).reshape(batch, 1, seq_len, 1)
        key_ok3 = self._blocks_with_neighbours(key_ok, num_blocks).reshape(batch, 1, num_blocks, 1, 3 * w)
        local_ok = (key_ok3 > 0.5) & self.band
        local_scores = torch.where(local_ok, local_scores, MASK_VALUE)

        # ---- every query also sees the global keys (regular projections): [B, H, n, w, G]
        num_slots = global_index.shape[1]
        slot_index = global_index.reshape(batch, 1, num_slots, 1).expand(batch, heads, num_slots, head_dim)
        k_global = torch.gather(k, 2, slot_index)
        v_global = torch.gather(v, 2, slot_index)
        global_scores = torch.matmul(q, k_global.transpose(-1, -2))
        global_scores = torch.where(
            global_valid.reshape(batch, 1, 1, num_slots),
            global_scores,
            MASK_VALUE,
        ).reshape(batch, heads, num_blocks, w, num_slots)

        probs = torch.softmax(torch.cat([global_scores, local_scores], dim=-1), dim=-1)
        probs = probs * is_real.to(probs.dtype).reshape(batch, 1, num_blocks, w, 1)
        probs_global = probs[..., :num_slots].reshape(batch, heads, seq_len, num_slots)
        probs_local = probs[..., num_slots:]
        out = torch.matmul(probs_local, v3).reshape(batch, heads, seq_len, head_dim)
        out = out + torch.matmul(probs_global, v_global)
        out = out.transpose(1, 2).reshape(batch, seq_len, embed)

        # ---- rows of global tokens: attention over all real tokens, global projections
        slot_hidden = torch.gather(hidden, 1, global_index.unsqueeze(-1).expand(batch, num_slots, embed))
        q_g = self._split_heads(self.query_global(slot_hidden) * scale)  # [B, H, G, d]
        w_k = self.key_global.weight.reshape(heads, head_dim, embed)  # rows of head h
        w_v = self.value_global.weight.reshape(heads, head_dim, embed)
        q_in_hidden = torch.matmul(q_g, w_k)  # [B, H, G, D]
        hidden_t = hidden.unsqueeze(1).transpose(-1, -2)  # [B, 1, D, L]
        g_scores = torch.matmul(q_in_hidden, hidden_t)  # [B, H, G, L]
        g_scores = torch.where(is_real.reshape(batch, 1, 1, seq_len), g_scores, MASK_VALUE)
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
