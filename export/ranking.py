"""Ranking check: does a quantized graph keep the *input-dependent* part of the vectors?

Mean-pooled vectors can share a large component that does not depend on the text (random-weight
Longformers: texts' vectors have cosine 0.88-0.998 with each other), so the plain cosine between a
graph's vector and PyTorch's stays near 1 even when a fault damages what distinguishes one text from
another. This module embeds
a fixed multilingual text set (:data:`.ranking_texts.RANKING_TEXTS`) with PyTorch and with an ONNX
session and compares what retrieval depends on:

* centered cosine: cosine per text after subtracting the mean PyTorch vector of the set from both;
* Spearman correlation of the pairwise cosine similarities (all text pairs), ours against PyTorch's;
* top-1 / top-5 neighbour agreement: the fraction of texts whose nearest neighbour (whose set of five
  nearest) among the other texts is the same in both.

The metric functions are plain numpy; :func:`reference_sets` (PyTorch) and :func:`rank_graph` (the
graph, one text per call) run the models.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

from ..batching import content_span, pad_batch, token_budget_batches
from ..common import graph_feeds, mean_pooling
from ..contract import ATTENTION_MASK, GLOBAL_ATTENTION_MASK, INPUT_IDS, SENTENCE_EMBEDDING
from ..errors import ParityError
from ..tables import format_ranking_table
from .ranking_texts import RANKING_TEXTS

# Minimum figures for a quantized graph (int8 and fp16), on this text set; chosen by measurement with
# benchmarks/ranking_gate.py (benchmarks/ranking_gate.md: every int8 recipe and planted faults on MiniLM
# real weights and on random tiny, small and base-geometry models).
# - centered_median_cosine: correct int8 graphs measured >= 0.994 wherever they pass the pooled-cosine
#   gate (random base geometry, recipe all-linear; MiniLM ffn-fp32 0.999) and 0.991 for MiniLM
#   all-linear, which that gate refuses. Faults that keep plain pooled cosine >= 0.99 measured 0.82-0.97
#   on random tiny and small models whose layers carry weight (initializer_range 0.035-0.06) and
#   0.95-0.99 on small at HF's default; 0.97 refuses most of them and leaves room for models whose
#   texts sit closer together than here (the figure falls with the set's spread).
#   Faults that move it less (0.990-0.998: random base-geometry attention projections, HF-default tiny
#   models) look exactly like benign int8 noise and left every ranking intact (Spearman >= 0.9996).
# - spearman: >= 0.991 for every correct graph measured (MiniLM all-linear the lowest); faults on real
#   weights fell to 0.53-0.81.
# - top1_agreement: correct graphs >= 0.96 where they pass the pooled gate, 0.81 for MiniLM all-linear;
#   real-weight faults 0.37-0.89. With 27 texts one flipped neighbour costs 0.037: 0.75 allows six.
# centered_min_cosine and top5_agreement are recorded, not gated: the text nearest the mean vector and
# near-ties among five neighbours move them without any fault (top-5 measured 0.63-1.0 on correct graphs).
RANKING_THRESHOLDS = {"centered_median_cosine": 0.97, "spearman": 0.98, "top1_agreement": 0.75}


@dataclass
class RankingSet:
    """The token ids of every text (one row each) and PyTorch's mean-pooled vectors for them."""

    global_first_token: bool
    input_ids: list[np.ndarray] = field(repr=False)
    reference: np.ndarray = field(repr=False)  # [texts, hidden], float64
    seconds_torch: float = 0.0

    @property
    def lengths(self) -> list[int]:
        return [int(ids.shape[1]) for ids in self.input_ids]


@dataclass
class RankingFigures:
    texts: int
    global_first_token: bool
    tokens_min: int
    tokens_max: int
    plain_min_cosine: float
    centered_min_cosine: float
    centered_median_cosine: float
    spearman: float
    top1_agreement: float
    top5_agreement: float
    seconds_torch: float = 0.0
    seconds_onnx: float = 0.0

    def as_dict(self) -> dict:
        return asdict(self)


# ---- metrics (pure numpy)


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cosine of two [n, d] arrays, in float64 (zero rows give 0)."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    denom = np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1)
    return (a * b).sum(-1) / np.maximum(denom, 1e-300)


def centered_cosines(ours: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Cosine per text after removing the reference's mean vector over the set from both."""
    reference = np.asarray(reference, dtype=np.float64)
    center = reference.mean(axis=0, keepdims=True)
    return cosines(np.asarray(ours, dtype=np.float64) - center, reference - center)


def similarity_matrix(vectors: np.ndarray) -> np.ndarray:
    """Cosine similarity of every pair of rows ([n, n], float64)."""
    vectors = np.asarray(vectors, dtype=np.float64)
    unit = vectors / np.maximum(np.linalg.norm(vectors, axis=-1, keepdims=True), 1e-300)
    return unit @ unit.T


def ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks with ties given their average rank (as Spearman's correlation needs)."""
    values = np.asarray(values)
    order = np.argsort(values, kind="mergesort")
    ordinal = np.empty(len(values), dtype=np.float64)
    ordinal[order] = np.arange(1, len(values) + 1)
    _, group, counts = np.unique(values, return_inverse=True, return_counts=True)
    return (np.bincount(group, weights=ordinal) / counts)[group]


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation of two equally long 1-D arrays (NaN when either is constant)."""
    ra, rb = ranks(a), ranks(b)
    ra -= ra.mean()
    rb -= rb.mean()
    denom = float(np.sqrt((ra * ra).sum() * (rb * rb).sum()))
    return float((ra * rb).sum() / denom) if denom > 0 else float("nan")


def pairwise_spearman(ours: np.ndarray, reference: np.ndarray) -> float:
    """Spearman correlation of the cosine similarities of all text pairs, ours against the reference."""
    upper = np.triu_indices(len(reference), k=1)
    return spearman(similarity_matrix(ours)[upper], similarity_matrix(reference)[upper])


def neighbours(vectors: np.ndarray, k: int) -> np.ndarray:
    """Indices of each row's ``k`` most cosine-similar other rows, most similar first ([n, k])."""
    sims = similarity_matrix(vectors)
    np.fill_diagonal(sims, -np.inf)
    return np.argsort(-sims, axis=1, kind="mergesort")[:, :k]


def neighbour_agreement(ours: np.ndarray, reference: np.ndarray, k: int) -> float:
    """Fraction of texts whose set of ``k`` nearest other texts is the same for ours and the reference."""
    k = min(k, len(reference) - 1)
    mine, theirs = neighbours(ours, k), neighbours(reference, k)
    same = [set(a) == set(b) for a, b in zip(mine.tolist(), theirs.tolist(), strict=True)]
    return float(np.mean(same))


def ranking_metrics(ours: np.ndarray, reference: np.ndarray) -> dict[str, float]:
    """Every figure the gate reads, for two [texts, hidden] arrays of the same texts."""
    if ours.shape != reference.shape or len(reference) < 3:
        raise ValueError(
            f"need two equal [texts >= 3, hidden] arrays, got {ours.shape} and {reference.shape}"
        )
    centered = centered_cosines(ours, reference)
    return {
        "plain_min_cosine": float(cosines(ours, reference).min()),
        "centered_min_cosine": float(centered.min()),
        "centered_median_cosine": float(np.median(centered)),
        "spearman": pairwise_spearman(ours, reference),
        "top1_agreement": neighbour_agreement(ours, reference, 1),
        "top5_agreement": neighbour_agreement(ours, reference, 5),
    }


# ---- running the models


def text_ids(
    backend, max_len: int, vocab_size: int, texts: Sequence[str] = RANKING_TEXTS
) -> list[np.ndarray]:
    """Each text tokenized with its special tokens, the content clipped so the row fits ``max_len``;
    ids the model's embedding table lacks (a tokenizer larger than the model) are dropped."""
    rows = []
    for text in texts:
        encoding = backend.encode(text)
        start, end = content_span(encoding.special_tokens_mask)
        prefix, suffix = encoding.ids[:start], encoding.ids[end:]
        content = [i for i in encoding.ids[start:end] if i < vocab_size]
        content = content[: max(0, max_len - len(prefix) - len(suffix))]
        rows.append(np.array([[*prefix, *content, *suffix]], dtype=np.int64))
    return rows


def _masks(ids: np.ndarray, global_first_token: bool) -> tuple[np.ndarray, np.ndarray]:
    mask = np.ones_like(ids)
    glob = np.zeros_like(ids)
    if global_first_token:
        glob[:, 0] = 1
    return mask, glob


# PyTorch runs the set in right-padded batches (at most this many rows and tokens): eager attention
# masks the padding, so the vectors equal batch-1 runs (max |difference| measured: 0.0 on the tiny test
# model, 8e-7 on MiniLM), and single calls of a tiny model on a busy 2-core machine spend their time in
# thread synchronisation (27 texts: 4.5 s one by one, 0.08 s batched). The graph runs one text per call.
REFERENCE_BATCH_ROWS = 8
REFERENCE_BATCH_TOKENS = 4096


def reference_sets(
    hf_model, backend, max_len: int, vocab_size: int, global_tokens: bool = True
) -> list[RankingSet]:
    """PyTorch eager vectors of the text set: without global attention and, for a graph that takes
    global tokens, with global attention on the first token of every text."""
    import torch

    rows = text_ids(backend, max_len, vocab_size)
    sets = []
    for global_first in (False, True) if global_tokens else (False,):
        start = time.perf_counter()
        vectors: list[np.ndarray | None] = [None] * len(rows)
        lengths = [row.shape[1] for row in rows]
        pad_id = int(hf_model.config.pad_token_id)
        for batch in token_budget_batches(lengths, REFERENCE_BATCH_ROWS, REFERENCE_BATCH_TOKENS):
            ids, mask = pad_batch([rows[i][0].tolist() for i in batch], pad_id)
            glob = np.zeros_like(ids)
            glob[:, 0] = int(global_first)
            with torch.no_grad():
                hidden = hf_model(
                    input_ids=torch.from_numpy(ids),
                    attention_mask=torch.from_numpy(mask),
                    global_attention_mask=torch.from_numpy(glob),
                ).last_hidden_state.numpy()
            for i, vector in zip(batch, mean_pooling(hidden.astype(np.float64), mask), strict=True):
                vectors[i] = vector
        sets.append(RankingSet(global_first, rows, np.stack(vectors), time.perf_counter() - start))
    return sets


def graph_vectors(ranking_set: RankingSet, session) -> np.ndarray:
    """The graph's ``sentence_embedding`` for every text of a set, batch 1 (as the runtime runs int8
    graphs: dynamic activation scales then never depend on other rows)."""
    accepted = [node.name for node in session.get_inputs()]
    vectors = []
    for ids in ranking_set.input_ids:
        mask, glob = _masks(ids, ranking_set.global_first_token)
        feeds = graph_feeds({INPUT_IDS: ids, ATTENTION_MASK: mask, GLOBAL_ATTENTION_MASK: glob}, accepted)
        try:
            vectors.append(session.run([SENTENCE_EMBEDDING], feeds)[0][0])
        except Exception as error:  # onnxruntime raises its own untyped Fail errors
            raise ParityError(
                f"graph failed to run on a ranking text of {ids.shape[1]} tokens: {error}"
            ) from error
    return np.stack(vectors)


def rank_graph(sets: Sequence[RankingSet], session) -> list[RankingFigures]:
    """The figures of a graph against PyTorch, one :class:`RankingFigures` per set."""
    figures = []
    for ranking_set in sets:
        start = time.perf_counter()
        vectors = graph_vectors(ranking_set, session)
        lengths = ranking_set.lengths
        figures.append(
            RankingFigures(
                texts=len(lengths),
                global_first_token=ranking_set.global_first_token,
                tokens_min=min(lengths),
                tokens_max=max(lengths),
                **ranking_metrics(vectors, ranking_set.reference),
                seconds_torch=ranking_set.seconds_torch,
                seconds_onnx=time.perf_counter() - start,
            )
        )
    return figures


def check_ranking(figures: Sequence[RankingFigures], precision: str) -> None:
    """Raise :class:`ParityError` naming every figure below :data:`RANKING_THRESHOLDS` (NaN fails)."""
    failing = [
        f"{name} {getattr(f, name):.4f} < {floor:.4f} ({'global <s>' if f.global_first_token else 'no global'})"
        for f in figures
        for name, floor in RANKING_THRESHOLDS.items()
        if not getattr(f, name) >= floor
    ]
    if failing:
        raise ParityError(
            f"{precision} graph failed the ranking check on {figures[0].texts} texts "
            f"(plain pooled cosine does not see this): {'; '.join(failing)}"
        )


def format_ranking(figures: Sequence[RankingFigures], label: str) -> str:
    """A fixed-width table of the figures, as the exporter prints them."""
    return format_ranking_table([f.as_dict() for f in figures], label)


class RankingCheck:
    """What :func:`..export_model` runs per quantized graph: PyTorch's vectors of the text set are
    computed once (:meth:`__init__`), each graph is scored (:meth:`score`, which logs the table and
    returns the manifest rows) and then held to :data:`RANKING_THRESHOLDS` (:meth:`check`)."""

    def __init__(self, hf_model, tokenizer, global_tokens: bool = True, progress=print) -> None:
        from .model import max_length
        from .pipeline import runtime_tokenizer

        config = hf_model.config
        backend = runtime_tokenizer(tokenizer)
        vocab_size = min(int(config.vocab_size), backend.get_vocab_size())
        progress(f"PyTorch reference for the ranking check: {len(RANKING_TEXTS)} texts")
        self.sets = reference_sets(hf_model, backend, max_length(config), vocab_size, global_tokens)
        self.progress = progress
        self.figures: list[RankingFigures] = []

    def score(self, session, label: str) -> list[dict]:
        """Figures of ``session``'s graph on the sets it can take (with global attention only when the
        graph takes ``global_attention_mask``)."""
        takes_global = GLOBAL_ATTENTION_MASK in [i.name for i in session.get_inputs()]
        self.figures = rank_graph([s for s in self.sets if takes_global or not s.global_first_token], session)
        self.progress(format_ranking(self.figures, label))
        return [f.as_dict() for f in self.figures]

    def check(self, precision: str) -> None:
        check_ranking(self.figures, precision)
