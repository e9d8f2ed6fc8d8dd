"""Random Longformer models and in-process tokenizers, for tests and benchmarks without a hub.

Real checkpoints cannot be downloaded everywhere (CI, air-gapped machines); a model with random
weights in the real geometry exercises exactly the same graph, and a byte-level BPE trained on a
few sentences with RoBERTa's post-processing behaves like the real tokenizer.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

ROBERTA_SPECIALS = ("<s>", "<pad>", "</s>", "<unk>", "<mask>")  # ids 0..4, as in RoBERTa

SAMPLE_CORPUS = (
    "I enjoy taking long walks along the beach with my dog.",
    "The quick brown fox jumps over the lazy dog.",
    "Longformer's attention mechanism scales linearly with sequence length.",
    "Documents of thousands of tokens are split into windows of local attention.",
    "Global attention lets the classification token see the whole document.",
    "Numbers like 3.14, 42 and 2026 appear in text too; so do symbols: #, @, %.",
)

GEOMETRIES = {
    # name: hidden, layers, heads, intermediate, max_position_embeddings, window
    "tiny": (32, 3, 4, 64, 130, 8),
    "small": (64, 2, 4, 128, 514, 32),
    "base": (768, 12, 12, 3072, 4098, 512),
    "large": (1024, 24, 16, 4096, 4098, 512),
}


def train_roberta_style_tokenizer(vocab_size: int = 400, corpus: Iterable[str] = SAMPLE_CORPUS):
    """A byte-level BPE with RoBERTa's specials and ``<s> ... </s>`` post-processing."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    tokenizer = Tokenizer(models.BPE(unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(ROBERTA_SPECIALS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(list(corpus) * 10, trainer)
    tokenizer.post_processor = processors.RobertaProcessing(("</s>", 2), ("<s>", 0))
    return tokenizer


def make_random_longformer(
    output_dir: str | Path,
    geometry: str = "tiny",
    *,
    attention_window: int | Sequence[int] | None = None,
    num_hidden_layers: int | None = None,
    vocab_size: int | None = None,
    seed: int = 0,
    initializer_range: float = 0.02,
) -> Path:
    """Save a random ``LongformerModel`` and a matching fast tokenizer as a local HF directory.

    ``initializer_range`` is the weights' standard deviation (HF's default 0.02). In a narrow model
    that makes every layer's contribution negligible next to the embeddings (the output is nearly the
    embedding layer's); about ``0.55 / sqrt(hidden)`` gives layers the weight they have in base
    geometry at 0.02, so a broken layer shows in the vectors."""
    import torch
    from transformers import LongformerConfig, LongformerModel, PreTrainedTokenizerFast

    hidden, layers, heads, intermediate, positions, window = GEOMETRIES[geometry]
    layers = num_hidden_layers or layers
    window = attention_window if attention_window is not None else window
    tokenizer = train_roberta_style_tokenizer()
    torch.manual_seed(seed)
    config = LongformerConfig(
        vocab_size=vocab_size or tokenizer.get_vocab_size(),
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        intermediate_size=intermediate,
        max_position_embeddings=positions,
        attention_window=list(window) if not isinstance(window, int) else window,
        pad_token_id=1,
        bos_token_id=0,
        eos_token_id=2,
        sep_token_id=2,
        type_vocab_size=1,
        initializer_range=initializer_range,
    )
    output_dir = Path(output_dir)
    LongformerModel(config, add_pooling_layer=False).eval().save_pretrained(output_dir)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
        pad_token="<pad>",
        cls_token="<s>",
        sep_token="</s>",
        mask_token="<mask>",
        model_max_length=positions - 2,
    )
    fast.save_pretrained(output_dir)
    return output_dir


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m longformer2vec.export.synthetic base DIR``: a random model to export offline."""
    import argparse

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("geometry", choices=sorted(GEOMETRIES))
    parser.add_argument("output_dir", type=Path)
    parser.add_argument("--vocab-size", type=int, default=None, help="default: the tokenizer's (~400)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    path = make_random_longformer(args.output_dir, args.geometry, vocab_size=args.vocab_size, seed=args.seed)
    print(path)


if __name__ == "__main__":
    main()
