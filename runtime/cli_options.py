"""The flags every command that embeds shares (`embed`, `encode`, `serve`), declared once here; their
values are checked once, by :class:`.options.ModelOptions`, which the commands build from them."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from .contract import PRECISIONS
from .options import GLOBAL_ATTENTIONS, POOLINGS, ModelOptions


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def add_model_arguments(
    parser: argparse.ArgumentParser,
    normalize_help: str = "L2-normalize the vectors",
    count: Callable[[str], int] = int,
    spin: bool = True,
) -> None:
    """``--model``, ``--precision``, ``--pooling``, ``--global-attention``, ``--normalize``, ``--threads``
    (parsed by ``count``; its range is :class:`.options.ModelOptions`' to check, which names the flag)
    and ``--spin``/``--no-spin`` (default ``spin``: the command's own)."""
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
    parser.add_argument(
        "--spin",
        action=argparse.BooleanOptionalAction,
        default=spin,
        help="let those threads busy-wait between operators (ONNX Runtime's default) instead of sleeping; "
        f"--no-spin leaves the cores to other threads and processes (default {'on' if spin else 'off'})",
    )


def model_from_args(args: argparse.Namespace, **overrides: Any):
    """The `Longformer2Vec` the parsed flags describe (``overrides`` replace options, e.g. ``normalize``)."""
    from .encoder import Longformer2Vec

    return Longformer2Vec.from_options(ModelOptions.from_namespace(args, **overrides))
