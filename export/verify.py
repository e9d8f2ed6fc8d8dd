"""Validate: run the unmodified HF model (PyTorch eager) and the ONNX graph on the same inputs.

The cases cover what breaks length-specialised exports: one token of text, a length that is not a
window multiple, exactly one window, one window + 1, several windows, the model maximum, and a
batch of mixed lengths; each without and with global attention on the first token.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from ..common import graph_feeds, mean_pooling
from ..contract import ATTENTION_MASK, GLOBAL_ATTENTION_MASK, INPUT_IDS
from ..errors import ParityError
from ..tables import format_parity_table
from .attention import query_block

# Minimum cosine of the pooled vector per precision; export refuses to finish below these.
POOLED_COSINE_THRESHOLDS = {"fp32": 0.9999, "fp16": 0.999, "int8": 0.99}
# fp32 must also match token by token: max |difference| relative to the largest reference value.
# Cosine alone is blind to real bugs on random-weight models (a window one key too narrow still
# gives cosine 0.99998 there, but a relative error near 1e-2, against 1e-7 for a correct graph).
FP32_TOKEN_MAX_RELATIVE = 1e-3

# In-distribution content for the cases: real models see text, not uniformly random ids (which
# exaggerate int8 error on trained weights). Repeated cyclically to reach the longer lengths.
VERIFICATION_TEXT = (
    "Transformer-based models are unable to process long sequences due to their self-attention "
    "operation, which scales quadratically with the sequence length. To address this limitation, "
    "we introduce the Longformer with an attention mechanism that scales linearly with sequence "
    "length, making it easy to process documents of thousands of tokens or longer. Longformer's "
    "attention mechanism is a drop-in replacement for the standard self-attention and combines a "
    "local windowed attention with a task motivated global attention. The committee met on Tuesday "
    "to review the budget for 2027; revenue rose 4.5% while costs fell, and the chair thanked the "
    "staff. She walked her dog along the beach at sunrise, then wrote three pages of her novel "
    "before breakfast. Rain is expected in the north tonight, with temperatures near 12 degrees. "
)


@dataclass
class ParityCase:
    name: str
    lengths: list[int]
    global_first_token: bool
    input_ids: np.ndarray = field(repr=False)
    attention_mask: np.ndarray = field(repr=False)
    global_attention_mask: np.ndarray = field(repr=False)


@dataclass
class ParityResult:
    case: str
    lengths: list[int]
    global_first_token: bool
    token_max_abs: float
    token_max_relative: float
    token_min_cosine: float
    pooled_max_abs: float
    pooled_min_cosine: float
    seconds_torch: float
    seconds_onnx: float


def case_lengths(max_len: int, window: int) -> dict[str, list[int]]:
    """Sequence lengths (specials included) per case, clipped to the model maximum."""

    def clip(n: int) -> int:
        return max(3, min(n, max_len))

    not_multiple = window + window // 2 + 3
    if not_multiple % window == 0:
        not_multiple += 1
    block = query_block(window // 2)  # inputs up to one block run unpadded (export.model.unpadded_up_to)
    return {
        "one_token": [3],
        "not_window_multiple": [clip(not_multiple)],
        "one_window": [clip(window)],
        "one_window_plus_one": [clip(window + 1)],
        "several_windows": [clip(3 * window + window // 4 + 1)],
        "model_max": [max_len],
        "mixed_batch": [clip(3), clip(window + 1), clip(2 * window + 7), clip(5)],
        # last, so the cases above keep the content they were drawn before these were added
        "one_block": [clip(block)],
        "one_block_plus_one": [clip(block + 1)],
    }


def build_cases(
    *,
    max_len: int,
    window: int,
    vocab_size: int,
    pad_token_id: int,
    prefix_ids: Sequence[int],
    suffix_ids: Sequence[int],
    special_ids: Sequence[int] = (),
    text_ids: Sequence[int] = (),
    seed: int = 0,
    global_tokens: bool = True,
) -> list[ParityCase]:
    """Content tokens between the tokenizer's own special tokens, right-padded batches.

    Content is ``text_ids`` (the tokenized :data:`VERIFICATION_TEXT`) read cyclically, each row
    starting at a different offset; without ``text_ids``, random non-special ids. Each case is run
    without and, when ``global_tokens`` (the graph takes them), with global attention on ``<s>``.
    """
    rng = np.random.default_rng(seed)
    banned = set(special_ids) | {pad_token_id} | set(prefix_ids) | set(suffix_ids)
    allowed = np.array([i for i in range(vocab_size) if i not in banned], dtype=np.int64)
    stream = [i for i in text_ids if i not in banned and i < vocab_size]

    def content(n: int) -> list[int]:
        if not stream:
            return rng.choice(allowed, size=n).tolist()
        start = int(rng.integers(len(stream)))
        return [stream[(start + k) % len(stream)] for k in range(n)]

    cases = []
    for name, lengths in case_lengths(max_len, window).items():
        width = max(lengths)
        ids = np.full((len(lengths), width), pad_token_id, dtype=np.int64)
        mask = np.zeros_like(ids)
        for row, n in enumerate(lengths):
            n_content = max(0, n - len(prefix_ids) - len(suffix_ids))
            seq = [*prefix_ids, *content(n_content), *suffix_ids]
            ids[row, : len(seq)] = seq
            mask[row, : len(seq)] = 1
        for global_first in (False, True) if global_tokens else (False,):
            glob = np.zeros_like(ids)
            if global_first:
                glob[:, 0] = 1
            cases.append(ParityCase(name, list(lengths), global_first, ids, mask, glob))
    return cases


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a.astype(np.float64)
    b = b.astype(np.float64)
    denom = np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1)
    return (a * b).sum(-1) / np.maximum(denom, 1e-30)


def torch_reference(hf_model: torch.nn.Module, case: ParityCase) -> tuple[np.ndarray, float]:
    """HF eager ``last_hidden_state`` for a case, and its run time."""
    start = time.perf_counter()
    with torch.no_grad():
        out = hf_model(
            input_ids=torch.from_numpy(case.input_ids),
            attention_mask=torch.from_numpy(case.attention_mask),
            global_attention_mask=torch.from_numpy(case.global_attention_mask),
        ).last_hidden_state
    return out.numpy(), time.perf_counter() - start


def compare(case: ParityCase, reference: np.ndarray, session, seconds_torch: float) -> ParityResult:
    """Token-state and pooled-vector agreement over the real tokens of every sequence."""
    start = time.perf_counter()
    feeds = {
        INPUT_IDS: case.input_ids,
        ATTENTION_MASK: case.attention_mask,
        GLOBAL_ATTENTION_MASK: case.global_attention_mask,
    }
    accepted = [node.name for node in session.get_inputs()]
    if case.global_first_token and GLOBAL_ATTENTION_MASK not in accepted:
        raise ValueError(f"case {case.name} has global tokens and the graph takes none")
    feeds = graph_feeds(feeds, accepted)
    try:
        hidden, pooled = session.run(None, feeds)
    except Exception as error:  # onnxruntime raises its own untyped Fail errors
        raise ParityError(
            f"graph failed to run on case {case.name} (lengths {case.lengths}): {error}"
        ) from error
    seconds_onnx = time.perf_counter() - start
    real = case.attention_mask.astype(bool)
    token_max_abs = float(np.abs(hidden[real] - reference[real]).max())
    pooled_ref = mean_pooling(reference.astype(np.float64), case.attention_mask)
    return ParityResult(
        case=case.name,
        lengths=case.lengths,
        global_first_token=case.global_first_token,
        token_max_abs=token_max_abs,
        token_max_relative=token_max_abs / max(float(np.abs(reference[real]).max()), 1e-30),
        token_min_cosine=float(_cosines(hidden[real], reference[real]).min()),
        pooled_max_abs=float(np.abs(pooled - pooled_ref).max()),
        pooled_min_cosine=float(_cosines(pooled, pooled_ref).min()),
        seconds_torch=seconds_torch,
        seconds_onnx=seconds_onnx,
    )


def format_table(results: Sequence[ParityResult], label: str) -> str:
    """A fixed-width table of the parity figures, one line per case."""
    return format_parity_table(results_to_json(results), label)


def check_thresholds(results: Sequence[ParityResult], precision: str) -> None:
    """Raise :class:`ParityError` naming every case below the thresholds (NaN fails too)."""
    threshold = POOLED_COSINE_THRESHOLDS[precision]
    relative = FP32_TOKEN_MAX_RELATIVE if precision == "fp32" else float("inf")
    failing = [
        r for r in results if not (r.pooled_min_cosine >= threshold and r.token_max_relative <= relative)
    ]
    if failing:
        names = ", ".join(
            f"{r.case}{'+global' if r.global_first_token else ''} (lengths {r.lengths}, "
            f"pooled cosine {r.pooled_min_cosine:.6f}, token max rel {r.token_max_relative:.1e})"
            for r in failing
        )
        rule = f"pooled cosine >= {threshold}" + (
            f", token max rel <= {relative}" if precision == "fp32" else ""
        )
        raise ParityError(f"{precision} graph failed parity (needs {rule}): {names}")


def results_to_json(results: Sequence[ParityResult]) -> list[dict]:
    return [asdict(r) for r in results]
