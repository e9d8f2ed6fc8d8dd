"""Vector helpers the runtime and the exporter share: the masked mean (the graph's pooling), L2
normalisation, and the feeds a graph takes. numpy only."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np


def mean_pooling(hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Masked mean over the sequence axis (VectorHub's vector; the graph's `sentence_embedding`).

    Padding never contributes and all-zero masks give zeros. Keeps float64 input in float64, so the
    exporter's parity reference uses the same definition at full precision.
    """
    dtype = np.result_type(hidden.dtype, np.float32)
    m = mask.astype(dtype)[..., None]
    summed = (hidden * m).sum(axis=1)
    counts = np.clip(m.sum(axis=1), 1e-9, None)
    return (summed / counts).astype(dtype)


def normalize(vectors: np.ndarray) -> np.ndarray:
    """L2-normalise rows; zero rows stay zero instead of becoming NaN."""
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return (vectors / np.where(norms == 0, 1.0, norms)).astype(np.float32)


def graph_feeds(feeds: Mapping[str, np.ndarray], input_names: Iterable[str]) -> dict[str, np.ndarray]:
    """The entries of ``feeds`` a graph takes: a graph exported without global tokens has no
    ``global_attention_mask``, and ONNX Runtime refuses inputs a graph does not have."""
    names = set(input_names)
    return {name: value for name, value in feeds.items() if name in names}
