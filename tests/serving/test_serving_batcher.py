"""Micro-batcher and request-text helpers, in process (no web stack): merging, routing, limits, failures.

Merging is made deterministic by a fake model whose first call blocks until the test releases it, so
the jobs submitted meanwhile are all queued when the worker comes back for its next batch.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest

from longformer2vec.serving.batcher import MicroBatcher, QueueFullError
from longformer2vec.serving.tokens import prepare_encodings, truncate_text


class FakeModel:
    """encode(texts) -> rows [len(text), index of text in the call]; records each call; can block."""

    def __init__(self, block_first: bool = False, fail_on: str | None = None) -> None:
        self.calls: list[list[str]] = []
        self.gate = threading.Event()
        self.entered = threading.Event()
        self.block_first = block_first
        self.fail_on = fail_on

    def __call__(self, texts: list[str]) -> np.ndarray:
        self.calls.append(list(texts))
        self.entered.set()
        if self.block_first and len(self.calls) == 1:
            assert self.gate.wait(10), "test never released the first call"
        if self.fail_on is not None and self.fail_on in texts:
            raise ValueError(f"cannot embed {self.fail_on!r}")
        return np.array([[len(t), i] for i, t in enumerate(texts)], dtype=np.float32)


def _blocked(model: FakeModel, batcher: MicroBatcher):
    """Occupy the worker with a first job so later submissions queue up; returns that job's future."""
    first = batcher.submit(["first"], 1)
    assert model.entered.wait(5)
    return first


def test_queued_requests_merge_into_one_call_and_come_back_in_order() -> None:
    model = FakeModel(block_first=True)
    batcher = MicroBatcher(model, max_batch_tokens=1000, max_wait_ms=0)
    try:
        first = _blocked(model, batcher)
        jobs = [
            (["a" * (i + 1), "b" * (10 + i)], batcher.submit(["a" * (i + 1), "b" * (10 + i)], 2))
            for i in range(5)
        ]
        assert batcher.depth == (5, 6)
        model.gate.set()
        for texts, future in jobs:
            rows = future.result(5)
            assert rows[:, 0].tolist() == [len(t) for t in texts]  # this caller's texts, in its order
        assert first.result(5).shape == (1, 2)
        assert len(model.calls) == 2 and len(model.calls[1]) == 10  # the five queued jobs: one call
    finally:
        batcher.close(5)


def test_token_budget_and_request_cap_split_batches() -> None:
    model = FakeModel(block_first=True)
    batcher = MicroBatcher(model, max_batch_tokens=100, max_batch_requests=3, max_wait_ms=0)
    try:
        _blocked(model, batcher)
        futures = [batcher.submit([f"t{i}"], 40) for i in range(4)]  # 2 x 40 fit in 100, a third does not
        futures += [batcher.submit([f"s{i}"], 1) for i in range(4)]
        model.gate.set()
        for f in futures:
            f.result(5)
        sizes = [len(c) for c in model.calls[1:]]
        assert sizes == [2, 3, 3], model.calls  # 40+40 (a third 40 would pass 100); 40+40+1; cap 3
    finally:
        batcher.close(5)


def test_one_request_at_a_time_when_max_batch_requests_is_1() -> None:
    model = FakeModel(block_first=True)
    batcher = MicroBatcher(model, max_batch_requests=1, max_wait_ms=0)
    try:
        _blocked(model, batcher)
        futures = [batcher.submit([f"t{i}"], 1) for i in range(3)]
        model.gate.set()
        for f in futures:
            f.result(5)
        assert [len(c) for c in model.calls] == [1, 1, 1, 1]
    finally:
        batcher.close(5)


def test_a_failing_request_fails_alone() -> None:
    model = FakeModel(block_first=True, fail_on="poison")
    batcher = MicroBatcher(model, max_wait_ms=0)
    try:
        _blocked(model, batcher)
        good1 = batcher.submit(["good one"], 1)
        bad = batcher.submit(["poison"], 1)
        good2 = batcher.submit(["ok", "fine"], 2)
        model.gate.set()
        assert good1.result(5)[:, 0].tolist() == [8]
        assert good2.result(5)[:, 0].tolist() == [2, 4]
        with pytest.raises(ValueError, match="poison"):
            bad.result(5)
    finally:
        batcher.close(5)


def test_full_queue_refuses_and_close_drains() -> None:
    model = FakeModel(block_first=True)
    batcher = MicroBatcher(model, capacity=2, max_wait_ms=0)
    first = _blocked(model, batcher)
    queued = batcher.submit(["queued"], 1)
    with pytest.raises(QueueFullError, match="max-queue 2"):
        batcher.submit(["one too many"], 1)
    closer = threading.Thread(target=batcher.close, args=(10,))
    closer.start()
    for _ in range(500):  # the queue is full either way; wait until close() says it is shutting down
        with pytest.raises(QueueFullError) as refused:
            batcher.submit(["late"], 1)
        if "shutting down" in str(refused.value):
            break
        time.sleep(0.01)
    assert "shutting down" in str(refused.value)
    model.gate.set()
    closer.join(10)
    assert first.result(0).shape == (1, 2) and queued.result(0)[0, 0] == 6  # drained before stopping


def _paced(batcher: MicroBatcher, n: int, gap_s: float) -> list:
    """Submit n one-text jobs `gap_s` apart (clients coming back one by one) and wait for all of them."""
    futures = []
    for i in range(n):
        if i:
            time.sleep(gap_s)
        futures.append(batcher.submit([f"p{i}"], 1))
    for f in futures:
        f.result(10)
    return futures


def test_a_batch_keeps_gathering_while_requests_keep_arriving() -> None:
    # Arrivals 0.12 s apart, each within max-wait of the one before, spanning 0.36 s: more than one
    # max-wait from the first. A window fixed at the first arrival would close after two of them.
    model = FakeModel(block_first=True)
    batcher = MicroBatcher(model, max_wait_ms=200)
    try:
        first = _blocked(model, batcher)
        time.sleep(1.0)  # the previous model call took 1 s: the batch may wait that long in all
        model.gate.set()
        first.result(5)
        _paced(batcher, 4, 0.12)
        assert [len(c) for c in model.calls[1:]] == [4], model.calls
    finally:
        batcher.close(5)


def test_gathering_stops_after_as_long_as_the_last_model_call() -> None:
    # The last call took ~0 s, so the batch waits at most max-wait (0.2 s) in all, however steadily
    # requests keep coming: the jobs 0.12 s apart split over several calls instead of one.
    model = FakeModel()
    batcher = MicroBatcher(model, max_wait_ms=200)
    try:
        batcher.submit(["warm"], 1).result(5)
        _paced(batcher, 5, 0.12)
        sizes = [len(c) for c in model.calls[1:]]
        assert sum(sizes) == 5 and len(sizes) >= 2 and max(sizes) <= 3, model.calls
    finally:
        batcher.close(5)


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="capacity"):
        MicroBatcher(FakeModel(), capacity=0)


# ---------------------------------------------------------------- token counts and truncation


@pytest.fixture(scope="module")
def tokenizer(tiny_int8_dir: Path):
    from longformer2vec import Longformer2Vec

    return Longformer2Vec(tiny_int8_dir).tokenizer


def test_truncation_keeps_the_head_or_tail_that_fits(tokenizer) -> None:
    text = " ".join(f"word{i}" for i in range(200))
    enc = tokenizer.encode(text)
    assert len(enc.ids) > 128
    head = truncate_text(tokenizer, text, 128, "right")
    tail = truncate_text(tokenizer, text, 128, "left")
    assert text.startswith(head) and text.endswith(tail)
    assert len(tokenizer.encode(head).ids) == 128 and len(tokenizer.encode(tail).ids) == 128
    assert truncate_text(tokenizer, "short", 128) == "short"
    encodings = prepare_encodings(tokenizer, [text, "short"], 128, truncate=True)
    assert [e.ids for e in encodings] == [tokenizer.encode(head).ids, tokenizer.encode("short").ids]
    (untruncated,) = prepare_encodings(tokenizer, [text], 128, truncate=False)
    assert untruncated.ids == enc.ids
