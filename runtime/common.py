"""Shared numpy helpers (pooling, padding, chunking), kept framework-free so they are trivially testable."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence

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


def token_budget_batches(
    lengths: Sequence[int], max_items: int, max_tokens: int, multiple: int = 1
) -> Iterator[list[int]]:
    """Indices of `lengths` in ascending-length batches of at most `max_items` rows and `max_tokens`
    padded tokens (rows x :func:`padded_width` of the longest); a row longer than the budget runs alone.

    Bounds peak memory: activations grow with batch x length, so eight 4096-token chunks in one call
    would need several GB where two do the same work with far less.
    """
    if max_items < 1 or max_tokens < 1:
        raise ValueError(f"max_items and max_tokens must be >= 1, got {max_items}, {max_tokens}")
    batch: list[int] = []
    for index in sorted(range(len(lengths)), key=lengths.__getitem__):
        width = padded_width(lengths[index], multiple)  # ascending order: the new row is the longest
        if batch and (len(batch) == max_items or (len(batch) + 1) * width > max_tokens):
            yield batch
            batch = []
        batch.append(index)
    if batch:
        yield batch


def content_span(special_tokens_mask: Sequence[int]) -> tuple[int, int]:
    """(start, end) of the tokens between the leading and the trailing special tokens of an encoding
    (e.g. ``<s> ... </s>``); ``start == end`` when there are only specials."""
    n = len(special_tokens_mask)
    start = 0
    while start < n and special_tokens_mask[start]:
        start += 1
    end = n
    while end > start and special_tokens_mask[end - 1]:
        end -= 1
    return start, end


def round_up(n: int, multiple: int) -> int:
    """Round `n` up to a multiple of `multiple` (>= 1)."""
    multiple = max(1, multiple)
    return -(-n // multiple) * multiple


def padded_width(longest: int, multiple: int) -> int:
    """Width of a batch whose longest row has `longest` tokens: rounded up to `multiple`, except that a
    batch no longer than one multiple stays as it is (the graph runs an input of up to one query block
    unpadded: a 14-token sentence costs 14 tokens, not 128; graphs that need more pad it themselves)."""
    return longest if longest <= multiple else round_up(longest, multiple)


def pad_batch(
    sequences: Sequence[Sequence[int]], pad_id: int, multiple: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """Right-pad id lists to :func:`padded_width` of the longest; returns int64 (ids, mask)."""
    longest = max((len(s) for s in sequences), default=0)
    width = padded_width(max(longest, 1), multiple)
    ids = np.full((len(sequences), width), pad_id, dtype=np.int64)
    mask = np.zeros((len(sequences), width), dtype=np.int64)
    for row, seq in enumerate(sequences):
        ids[row, : len(seq)] = seq
        mask[row, : len(seq)] = 1
    return ids, mask


def split_long(ids_content: Sequence[int], chunk_len: int, overlap: int) -> list[list[int]]:
    """Split content ids into windows of `chunk_len` with `overlap`; the last window ends at the last token.

    Overlap is clamped to `chunk_len - 1` so the stride is always positive.
    """
    if chunk_len < 1:
        raise ValueError(f"chunk_len must be >= 1, got {chunk_len}")
    ids = list(ids_content)
    if len(ids) <= chunk_len:
        return [ids]
    stride = chunk_len - min(max(overlap, 0), chunk_len - 1)
    chunks = []
    start = 0
    while True:
        chunks.append(ids[start : start + chunk_len])
        if start + chunk_len >= len(ids):
            return chunks
        start += stride
