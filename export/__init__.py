"""PyTorch -> ONNX export of Longformer, verified against HF eager before it is saved.

Needs the ``export`` extra (torch, transformers, onnx). Split like optimum's exporters:
:mod:`.model` patches the model (banded attention from :mod:`.attention`), :mod:`.convert`
traces and quantizes, :mod:`.verify` checks parity, :mod:`.directory` writes the model directory
that :mod:`longformer2vec.contract` defines; :mod:`.pipeline` (:func:`export_model`) runs them in order.

This module only hands names on, lazily: ``import longformer2vec.export`` imports neither torch nor
transformers, so the runtime, its tests and its error messages can import it where they are absent.
"""

from __future__ import annotations

import importlib
from typing import Any

# name -> the module that defines it (relative to this package)
_NAMES = {
    "export_model": ".pipeline",
    "load_hf": ".pipeline",
    "parity_cases": ".pipeline",
    "runtime_tokenizer": ".pipeline",
    "special_token_frame": ".pipeline",
    "verification_providers": ".pipeline",
    "FUSED_NEEDS_CUDA": ".pipeline",
    "INT8_RECIPES": ".convert",
    "Int8Recipe": ".convert",
    "PRECISIONS": "..contract",
    "sha256_file": "..contract",
    "ParityError": "..errors",
}

__all__ = ["INT8_RECIPES", "PRECISIONS", "Int8Recipe", "ParityError", "export_model", "sha256_file"]


def __getattr__(name: str) -> Any:
    module = _NAMES.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_NAMES})
