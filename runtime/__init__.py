"""longformer2vec: ONNX Runtime inference for the Longformer encoder behind VectorHub's `Longformer2Vec`.

Only onnxruntime, numpy and tokenizers are imported here; torch/transformers are needed solely by
`longformer2vec.export`, pyarrow/tqdm by `longformer2vec.corpus` (the `encode` command), Ray by nothing
(`Longformer2VecBatchEncoder` is a plain class Ray Data calls). Either the `onnxruntime` or the
`onnxruntime-gpu` wheel may provide `onnxruntime` (install exactly one of them).
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from .card import ModelDefinition, load_card, parse_card
from .contract import GraphEntry, Manifest, load_model_dir
from .encoder import DEFAULT_MODEL, Longformer2Vec
from .errors import ExportUnavailableError, Longformer2VecError, ModelLoadError, ParityError


def __getattr__(name: str) -> object:
    """Lazy `Longformer2VecBatchEncoder` (Ray Data batch class): importing the package stays Ray-free."""
    if name == "Longformer2VecBatchEncoder":
        from .ray_encoder import Longformer2VecBatchEncoder

        return Longformer2VecBatchEncoder
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


try:
    __version__ = version("longformer2vec")
except PackageNotFoundError:  # running from a source tree without installing
    __version__ = "0.1.0"

__all__ = [
    "DEFAULT_MODEL",
    "ExportUnavailableError",
    "GraphEntry",
    "Longformer2Vec",
    "Longformer2VecBatchEncoder",
    "Longformer2VecError",
    "Manifest",
    "ModelDefinition",
    "ModelLoadError",
    "ParityError",
    "__version__",
    "load_card",
    "load_model_dir",
    "parse_card",
]
