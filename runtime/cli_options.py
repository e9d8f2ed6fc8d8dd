"""The options every command that embeds shares (`embed`, `encode`, `serve`): declared once here, turned
into a `Longformer2Vec` once here."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from .contract import POOLINGS, PRECISIONS
from .placement import GLOBAL_ATTENTIONS


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def add_model_arguments(
    parser: argparse.ArgumentParser,
    normalize_help: str = "L2-normalize the vectors",
    count: Callable[[str], int] = positive_int,
) -> None:
    """``--model``, ``--precision``, ``--pooling``, ``--global-attention``, ``--normalize``, ``--threads``
    (parsed by ``count``: ``serve`` checks its numbers itself, to name every bad one the same way)."""
    parser.add_argument("--model", required=True, help="exported model directory or hub id")
    parser.add_argument(
        "--precision",
        choices=PRECISIONS,
        default=None,
        help="which graph of the directory to run (default: int8 on the CPU, fp16 on CUDA, else what it has)",
    )
    parser.add_argument(
        "--pooling", choices=POOLINGS, default="mean", help="mean over tokens, or <s> (default mean)"
    )
    parser.add_argument(
        "--global-attention",
        choices=GLOBAL_ATTENTIONS,
        default="none",
        help="global attention on <s> (needs a graph exported with --global-tokens; default none)",
    )
    parser.add_argument("--normalize", action="store_true", help=f"{normalize_help} (default off)")
    parser.add_argument(
        "--threads",
        type=count,
        default=None,
        help="ONNX Runtime intra-op threads (default: one per core)",
    )


def model_from_args(args: Any, **overrides: Any):
    """The `Longformer2Vec` the shared options describe; ``args`` is argparse's namespace or any object
    with the same attribute names (the server's config). ``batch_size``/``max_batch_tokens`` when present."""
    from .encoder import Longformer2Vec

    options: dict[str, Any] = {
        "precision": args.precision,
        "pooling": args.pooling,
        "global_attention": args.global_attention,
        "normalize": args.normalize,
        "intra_op_num_threads": args.threads,
    }
    for name in ("batch_size", "max_batch_tokens"):
        if getattr(args, name, None) is not None:
            options[name] = getattr(args, name)
    options.update(overrides)
    return Longformer2Vec(args.model, **options)
