"""The options of a model, validated once: the API (:class:`~longformer2vec.Longformer2Vec`), the CLI
(`embed`, `encode`) and the server (`ServeConfig`) each build one :class:`ModelOptions` and hand it on,
so each option's allowed values and its check live here and nowhere else.

A new option is one field here (with its check in ``__post_init__``); the CLI picks fields up by name
from its parsed arguments (:meth:`ModelOptions.from_namespace`).
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any

from .contract import DEFAULT_MODEL, POOLINGS
from .contract import PRECISIONS as GRAPH_PRECISIONS

PRECISIONS = (None, *GRAPH_PRECISIONS)  # None: int8 on the CPU, fp16 on CUDA, else what the directory has
GLOBAL_ATTENTIONS = ("none", "cls")
__all__ = ["GLOBAL_ATTENTIONS", "POOLINGS", "PRECISIONS", "ModelOptions", "OptionError"]


class OptionError(ValueError):
    """An option with a value it cannot take; :meth:`flag` words it as the command line's flag."""

    def __init__(self, name: str, problem: str) -> None:
        self.name, self.problem = name, problem
        super().__init__(f"{name} {problem}")

    def flag(self) -> str:
        return f"--{self.name.replace('_', '-')} {self.problem}"


def check_count(name: str, value: object, minimum: int) -> int:
    """``value`` when it is an int (not a bool) >= ``minimum``, else :class:`OptionError`."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise OptionError(name, f"must be an integer >= {minimum}, got {value!r}")
    return value


def check_choice(name: str, value: object, allowed: Sequence[object]) -> None:
    if value not in allowed:
        raise OptionError(name, f"must be one of {list(allowed)}, got {value!r}")


@dataclass(frozen=True)
class ModelOptions:
    """Which model, which graph, and how its vectors are made."""

    model: str = DEFAULT_MODEL  # an exported directory, a hub id, or a local Hugging Face checkpoint
    precision: str | None = None  # which graph of the directory; None = the device's preference
    pooling: str = "mean"
    global_attention: str = "none"
    normalize: bool = False
    threads: int | None = None  # ONNX Runtime intra-op threads; None = one per core
    # Whether those threads busy-wait for work between operators (ONNX Runtime's default) instead of
    # sleeping: a little lower latency on idle cores, CPU taken from every other thread on busy ones.
    spin: bool = True
    batch_size: int = 8  # rows per ONNX call
    max_batch_tokens: int | None = None  # padded tokens per ONNX call; None = 2048 on the CPU, 8192 on a GPU
    chunk_overlap: int | None = None  # tokens shared by windows of a long text; None = the manifest's

    def __post_init__(self) -> None:
        if isinstance(self.model, os.PathLike):
            object.__setattr__(self, "model", os.fspath(self.model))
        if not isinstance(self.model, str):
            raise OptionError("model", f"must be a directory or a hub id, got {self.model!r}")
        check_choice("precision", self.precision, PRECISIONS)
        check_choice("pooling", self.pooling, POOLINGS)
        check_choice("global_attention", self.global_attention, GLOBAL_ATTENTIONS)
        object.__setattr__(self, "normalize", bool(self.normalize))
        if not isinstance(self.spin, bool):
            raise OptionError("spin", f"must be True or False, got {self.spin!r}")
        check_count("batch_size", self.batch_size, 1)
        for name, minimum in (("threads", 1), ("max_batch_tokens", 1), ("chunk_overlap", 0)):
            if getattr(self, name) is not None:
                check_count(name, getattr(self, name), minimum)

    @property
    def global_tokens(self) -> bool:
        """Whether the graph must take global tokens."""
        return self.global_attention != "none"

    @classmethod
    def from_namespace(cls, args: argparse.Namespace, **overrides: Any) -> ModelOptions:
        """The options a parsed command line holds: every field it has a value for (None for an
        optional count means its default)."""
        names = {f.name for f in fields(cls)}
        values = {k: v for k, v in vars(args).items() if k in names}
        for name in ("batch_size",):  # required counts: an absent flag keeps the default
            if values.get(name) is None:
                values.pop(name, None)
        return cls(**{**values, **overrides})
