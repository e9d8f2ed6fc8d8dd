"""The model patcher: HF ``LongformerModel`` re-wired for export (same weights, same function).

Only the self-attention is replaced (see :mod:`.attention`); embeddings, the attention output
projection, the feed-forward blocks and their LayerNorms are HF's own modules, called directly.
The wrapper also pads the input to a multiple of every layer's query block (so callers may
send any length) and adds the pooled ``sentence_embedding`` output (VectorHub's masked mean).
"""

from __future__ import annotations

import math
from functools import reduce

import torch
from torch import nn

from ..contract import LAYOUTS, graph_inputs
from .attention import BandedLongformerSelfAttention, BandInputs, band_inputs, mask_bias, query_block
from .fused_attention import FusedInputs, FusedLongformerSelfAttention, unsupported_global_rows


def attention_windows(config) -> list[int]:
    """Per-layer (two-sided) attention windows of a LongformerConfig, as a list."""
    window = config.attention_window
    if isinstance(window, int):
        return [window] * config.num_hidden_layers
    windows = list(window)
    if len(windows) != config.num_hidden_layers:
        raise ValueError(f"attention_window has {len(windows)} entries for {config.num_hidden_layers} layers")
    return windows


def pad_multiple(config, layout: str = "cpu") -> int:
    """Padded lengths must be a multiple of every layer's query block (:func:`.attention.query_block`,
    half the one-sided window): their least common multiple. Smaller than the window itself, so less
    padding is computed (a 513-token input runs as 640 tokens, not 768, in longformer-base). An input
    no longer than every block (:func:`unpadded_up_to`) is not padded at all. The ``fused`` layout's
    kernel needs multiples of each (two-sided) window instead, whatever the length."""
    windows = attention_windows(config)
    blocks = windows if layout == "fused" else [query_block(w // 2) for w in windows]
    return reduce(lambda a, b: a * b // math.gcd(a, b), blocks)


def unpadded_up_to(config, layout: str = "cpu") -> int:
    """Longest input the graph runs as it is, without padding: one query block of its own length in
    every layer (the smallest block; 128 tokens in base), so a 14-token sentence costs 14 tokens of
    work, not 128. 0 for the ``fused`` layout, whose kernel always needs whole windows."""
    if layout == "fused":
        return 0
    return min(query_block(w // 2) for w in attention_windows(config))


def max_length(config) -> int:
    """Longest input (specials included) the position table covers: positions start at pad+1."""
    return int(config.max_position_embeddings) - int(config.pad_token_id) - 1


# Smallest hidden size for which the CPU layout's per-head chains pay for their extra nodes.
CPU_LAYOUT_MIN_HIDDEN = 512


def default_layout(config, precision: str) -> str:
    """The layout a graph of ``precision`` gets unless told: ``"gpu"`` for fp16 (the CUDA graph), and
    for models narrower than :data:`CPU_LAYOUT_MIN_HIDDEN`, whose per-head chains are so small that
    the extra nodes cost more than the copies they save; ``"cpu"`` otherwise, which runs longformer-base
    faster on the CPU (both measured side by side by ``benchmarks/graph_ab.py``)."""
    if precision == "fp16" or int(config.hidden_size) < CPU_LAYOUT_MIN_HIDDEN:
        return "gpu"
    return "cpu"


class LongformerForExport(nn.Module):
    """``(input_ids, attention_mask, global_attention_mask) -> (last_hidden_state, sentence_embedding)``.

    ``layout`` arranges the same computation for where the graph will run: ``"gpu"`` runs the
    attention of all heads over whole tensors, the fewest nodes (a CUDA graph pays per kernel launch);
    ``"cpu"`` runs it as one chain per head, without transposed copies
    (:class:`.attention.BandedLongformerSelfAttention`), measured faster on the CPU
    (benchmarks/RESULTS.md); ``"fused"`` emits ONNX Runtime's CUDA-only ``LongformerAttention`` op,
    one node per layer (:mod:`.fused_attention`: global tokens must come first).

    ``global_tokens=False`` leaves global attention out: the graph takes no ``global_attention_mask``
    (:attr:`input_names`) and computes what HF does without one, which is what VectorHub's ``encode``
    runs, with 18-22 fewer nodes per layer and no TopK (a value that becomes a shape, so on CUDA a copy
    back to the host) in the batched and per-head layouts.
    """

    def __init__(self, hf_model: nn.Module, layout: str = "cpu", global_tokens: bool = True) -> None:
        super().__init__()
        if layout not in LAYOUTS:
            raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
        config = hf_model.config
        for w in attention_windows(config):
            if w <= 0 or w % 2:
                raise ValueError(f"attention windows must be positive and even, got {w}")
        self.pad_token_id = int(config.pad_token_id)
        self.pad_multiple = pad_multiple(config, layout)
        self.unpadded_up_to = unpadded_up_to(config, layout)
        self.layout = layout
        self.global_tokens = global_tokens
        self.max_length = max_length(config)
        self.embeddings = hf_model.embeddings
        self.layers = hf_model.encoder.layer
        self.attentions = nn.ModuleList(
            FusedLongformerSelfAttention(layer.attention.self, w // 2)
            if layout == "fused"
            else BandedLongformerSelfAttention(
                layer.attention.self, w // 2, per_head=layout == "cpu", global_tokens=global_tokens
            )
            for layer, w in zip(self.layers, attention_windows(config), strict=True)
        )

    @property
    def input_names(self) -> tuple[str, ...]:
        """The graph's inputs: ``global_attention_mask`` only when it accepts global tokens."""
        return graph_inputs(self.global_tokens)

    def embed(self, input_ids: torch.Tensor) -> torch.Tensor:
        """HF's embeddings with RoBERTa positions (pad+1, pad+2, ... for non-pad tokens)."""
        emb = self.embeddings
        not_pad = (input_ids != self.pad_token_id).to(torch.int64)
        positions = torch.cumsum(not_pad, dim=1) * not_pad + self.pad_token_id
        x = emb.word_embeddings(input_ids) + emb.position_embeddings(positions)
        x = x + emb.token_type_embeddings.weight[0]  # token_type_ids are all zero
        return emb.LayerNorm(x)

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        global_attention_mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        seq_len = input_ids.shape[1]
        pad = (self.pad_multiple - seq_len % self.pad_multiple) % self.pad_multiple
        pad = pad * (seq_len > self.unpadded_up_to)  # a short input is one block as it is (traced, no branch)
        ids = nn.functional.pad(input_ids, (0, pad), value=self.pad_token_id)
        is_real = nn.functional.pad(attention_mask, (0, pad), value=0) > 0
        is_global = None
        if self.global_tokens:
            if global_attention_mask is None:
                raise ValueError(
                    "this model takes global tokens: pass global_attention_mask (zeros for none)"
                )
            is_global = is_real & (nn.functional.pad(global_attention_mask, (0, pad), value=0) > 0)
        elif global_attention_mask is not None:
            raise ValueError("this model was built without global tokens (global_tokens=False)")
        inputs = self._attention_inputs(is_real, is_global)

        hidden = self.embed(ids)
        for layer, attention in zip(self.layers, self.attentions, strict=True):
            attn = attention(hidden, inputs[attention.window])
            hidden = layer.attention.output(attn, hidden)
            hidden = layer.output(layer.intermediate(hidden), hidden)
        if self.layout == "fused" and is_global is not None:
            # sequences whose global tokens the kernel cannot handle come out as NaN, not wrong
            max_globals = min(attention.window for attention in self.attentions)
            unsupported = unsupported_global_rows(is_global, max_globals)
            hidden = hidden.masked_fill(unsupported.reshape(-1, 1, 1), float("nan"))

        hidden = hidden[:, :seq_len]
        weights = (attention_mask > 0).to(hidden.dtype).unsqueeze(-1)
        pooled = (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1.0)
        return hidden, pooled

    def _attention_inputs(
        self, is_real: torch.Tensor, is_global: torch.Tensor | None
    ) -> dict[int, BandInputs | FusedInputs]:
        """What each layer's attention takes besides the hidden states, per one-sided window: built once
        per forward pass and shared by the layers with that window. ``fused``: the kernel's padding mask
        and int32 global flags (:class:`.fused_attention.FusedInputs`; all zero without global tokens,
        the op's input is not optional); ``cpu`` / ``gpu``: the band bias, key indices, block shape and
        global slots (:class:`.attention.BandInputs`)."""
        windows = sorted({attention.window for attention in self.attentions})
        if self.layout == "fused":
            flags = torch.zeros_like(is_real) if is_global is None else is_global
            return dict.fromkeys(windows, FusedInputs(mask_bias(is_real), flags.to(torch.int32)))
        first = self.attentions[0]
        return band_inputs(is_real, is_global, windows, first.num_heads, first.head_dim, self.layout == "cpu")
