"""From tokenized texts to vectors: rows (whole texts or windows of long ones), batched calls, and the
weighted mean that turns a long text's window vectors back into one vector.

The windowing rule, shared with the JavaScript client: a text longer than ``max_length`` tokens keeps
its leading and trailing special tokens; the content between them is split into windows of
``max_length - n_specials`` tokens, consecutive windows overlapping by ``chunk_overlap`` tokens (the
last window ends at the last token), each window wrapped in the same specials. Its vector is the mean
of the window vectors weighted by each window's token count, specials included.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
from tokenizers import Encoding

from .contract import GraphEntry
from .errors import Longformer2VecError, ModelLoadError
from .session import OnnxSession


# ------------------------------------------------------------------ windows, padding and batches
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


# ------------------------------------------------------------------ rows through a session
@dataclass
class Row:
    """One model input row: a whole text or one window of a long text."""

    text_index: int
    ids: list[int]


def split_into_rows(encodings: Sequence[Encoding], max_length: int, chunk_overlap: int) -> list[Row]:
    """Each encoding as one row, or as special-wrapped windows when it is longer than ``max_length``."""
    rows: list[Row] = []
    for index, encoding in enumerate(encodings):
        ids = list(encoding.ids)
        if not ids:
            raise Longformer2VecError(
                f"texts[{index}] produced no tokens; the tokenizer has no post-processor adding specials"
            )
        if len(ids) <= max_length:
            rows.append(Row(index, ids))
            continue
        start, end = content_span(encoding.special_tokens_mask)
        head, content, tail = ids[:start], ids[start:end], ids[end:]
        window = max_length - len(head) - len(tail)
        if window < 1:
            raise Longformer2VecError(
                f"max_length {max_length} leaves no room next to {len(head) + len(tail)} special tokens"
            )
        rows.extend(Row(index, head + chunk + tail) for chunk in split_long(content, window, chunk_overlap))
    return rows


def combine_rows(rows: Sequence[Row], vectors: np.ndarray, n_texts: int) -> np.ndarray:
    """Token-count-weighted mean of each text's row vectors (identity for single-row texts)."""
    sums = np.zeros((n_texts, vectors.shape[-1]), dtype=np.float64)
    weights = np.zeros(n_texts, dtype=np.float64)
    for row, vector in zip(rows, vectors, strict=True):
        sums[row.text_index] += len(row.ids) * vector
        weights[row.text_index] += len(row.ids)
    return (sums / weights[:, None]).astype(np.float32)


def max_rows_per_call(graph: GraphEntry, batch_size: int) -> int:
    """Rows one ONNX call may hold: one for int8 graphs that scale activations once per call over the
    whole input (padding included), where a row's vector would depend on the rows beside it; running
    them one row per call makes every text's vector a function of the text alone. Graphs that scale
    per token (``GraphEntry.batch_independent_width``) batch like fp32."""
    return 1 if graph.batch_independent_width == 0 else batch_size


INT8_BATCHED_ROW_TOKENS = 128


def call_batches(
    graph: GraphEntry, lengths: Sequence[int], batch_size: int, max_batch_tokens: int
) -> list[list[int]]:
    """Indices of the rows of each ONNX call, sorted by length (:func:`token_budget_batches`).

    int8 graphs batch only rows of at most :data:`INT8_BATCHED_ROW_TOKENS` padded tokens (queries,
    titles, sentences), and no wider than the graph's ``batch_independent_width``: there one call per
    row is mostly per-call overhead. A longer int8 row runs alone: on the CPU one such row already
    keeps the cores busy, and documents in batches ran slower than one per call
    (``benchmarks/int8_rows.py``); a ``by-length`` graph also scales such rows once per call."""
    multiple = graph.pad_multiple
    width = graph.batch_independent_width
    if graph.precision != "int8" or width == 0:
        per_call = max_rows_per_call(graph, batch_size)
        return list(token_budget_batches(lengths, per_call, max_batch_tokens, multiple))
    limit = INT8_BATCHED_ROW_TOKENS if width is None else min(width, INT8_BATCHED_ROW_TOKENS)
    short = [i for i, n in enumerate(lengths) if padded_width(n, multiple) <= limit]
    chosen = set(short)
    long = sorted((i for i in range(len(lengths)) if i not in chosen), key=lengths.__getitem__)
    batches = token_budget_batches([lengths[i] for i in short], batch_size, max_batch_tokens, multiple)
    return [[short[j] for j in batch] for batch in batches] + [[i] for i in long]


@dataclass
class RowRunner:
    """Runs rows through one session: sorted by length, in batches bounded by rows and padded tokens."""

    session: OnnxSession
    graph: GraphEntry
    pad_token_id: int
    max_length: int
    vector_length: int
    pooling: str
    global_attention: str

    def run(self, rows: Sequence[Row], batch_size: int, max_batch_tokens: int) -> np.ndarray:
        """Vectors of ``rows`` in their order (float32 ``[len(rows), vector_length]``)."""
        out = np.zeros((len(rows), self.vector_length), dtype=np.float32)
        multiple = self.graph.pad_multiple
        lengths = [len(row.ids) for row in rows]
        for batch in call_batches(self.graph, lengths, batch_size, max_batch_tokens):
            out[batch] = self._run_batch([rows[i].ids for i in batch], multiple)
        return out

    def _run_batch(self, sequences: list[list[int]], multiple: int) -> np.ndarray:
        longest = max(len(s) for s in sequences)
        # Never pad past max_length just to reach the multiple; the graph pads internally anyway.
        if padded_width(longest, multiple) > self.max_length:
            multiple = 1
        ids, mask = pad_batch(sequences, self.pad_token_id, multiple)
        global_mask = np.zeros_like(ids)
        if self.global_attention == "cls":
            global_mask[:, 0] = 1
        hidden, pooled = self.session.run(ids, mask, global_mask, need_hidden=self.pooling == "cls")
        vectors = pooled if hidden is None else hidden[:, 0, :]
        if vectors.shape[-1] != self.vector_length:
            raise ModelLoadError(
                f"{self.graph.path} produced vectors of length {vectors.shape[-1]}, "
                f"manifest says {self.vector_length}"
            )
        return vectors
