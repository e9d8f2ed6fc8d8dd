"""Encoder behaviour against the stub model: shapes, batching parity, long texts, input validation."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from longformer2vec import Longformer2Vec, ModelDefinition
from longformer2vec.batching import split_long
from tests.helpers_runtime import BOS, EOS, HIDDEN, global_vector, oracle_vector

LONG_TEXT = " ".join(
    f"Sentence {i} about the lazy dog walking along the beach with long documents." for i in range(12)
)


@pytest.fixture(scope="module")
def model(stub_dir: Path) -> Longformer2Vec:
    return Longformer2Vec(str(stub_dir), batch_size=3, chunk_overlap=5)


def _content_ids(model: Longformer2Vec, text: str) -> list[int]:
    return model.tokenizer.encode(text, add_special_tokens=False).ids


def _expected_long(model: Longformer2Vec, table: np.ndarray, text: str, overlap: int) -> np.ndarray:
    """Documented combination: windows of max_length-2 content tokens, wrapped, token-count weighted mean."""
    content = _content_ids(model, text)
    chunks = [[BOS, *c, EOS] for c in split_long(content, model.max_length - 2, overlap)]
    vecs = np.stack([oracle_vector(table, c) for c in chunks])
    weights = np.array([len(c) for c in chunks], dtype=np.float64)
    return (vecs * weights[:, None]).sum(0) / weights.sum()


def test_encode_returns_python_floats(model: Longformer2Vec, stub_table: np.ndarray) -> None:
    vec = model.encode("the lazy dog walks")
    assert isinstance(vec, list) and len(vec) == model.vector_length == HIDDEN
    assert all(type(x) is float for x in vec)
    ids = model.tokenizer.encode("the lazy dog walks").ids
    assert ids[0] == BOS and ids[-1] == EOS and len(ids) <= model.max_length
    np.testing.assert_allclose(vec, oracle_vector(stub_table, ids), rtol=1e-5, atol=1e-6)


def test_bulk_encode_matches_encode_and_keeps_order(model: Longformer2Vec) -> None:
    texts = ["dog", LONG_TEXT, "", "The quick brown fox jumps over the lazy dog.", "a b", LONG_TEXT[:90]]
    bulk = model.bulk_encode(texts)
    assert len(bulk) == len(texts)
    for text, vec in zip(texts, bulk, strict=True):
        np.testing.assert_allclose(vec, model.encode(text), rtol=1e-5, atol=1e-6)
    assert model.encode(texts) == bulk  # list input routes to bulk_encode
    np.testing.assert_allclose(model.bulk_encode(texts, batch_size=1), bulk, rtol=1e-5, atol=1e-6)


def test_empty_inputs(model: Longformer2Vec, stub_table: np.ndarray) -> None:
    assert model.bulk_encode([]) == []
    assert model.encode([]) == []
    assert model.encode_numpy([]).shape == (0, HIDDEN)
    np.testing.assert_allclose(model.encode(""), oracle_vector(stub_table, [BOS, EOS]), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("overlap", [0, 5, 10_000])
def test_long_text_is_chunked_not_truncated(stub_dir: Path, stub_table: np.ndarray, overlap: int) -> None:
    model = Longformer2Vec(str(stub_dir), chunk_overlap=overlap)
    assert len(model.tokenizer.encode(LONG_TEXT).ids) > 3 * model.max_length
    got = np.array(model.encode(LONG_TEXT))
    np.testing.assert_allclose(
        got, _expected_long(model, stub_table, LONG_TEXT, overlap), rtol=1e-5, atol=1e-6
    )
    # truncating to the first window would give something different
    head = [BOS, *_content_ids(model, LONG_TEXT)[: model.max_length - 2], EOS]
    assert not np.allclose(got, oracle_vector(stub_table, head), atol=1e-3)


def test_exactly_max_length_is_one_window(model: Longformer2Vec, stub_table: np.ndarray) -> None:
    content = _content_ids(model, LONG_TEXT)[: model.max_length - 2]
    text = model.tokenizer.decode(content)
    ids = model.tokenizer.encode(text).ids
    assert len(ids) <= model.max_length
    np.testing.assert_allclose(model.encode(text), oracle_vector(stub_table, ids), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    ("bad", "needle"),
    [
        (None, "text is null, not a string"),
        (b"x", "text is bytes (decode them to str first)"),
        (3, "text is an integer"),
        (["a", 3], "texts[1] is an integer, not a string"),
        ([["a"]], "texts[0] is a list, not a string"),
    ],
)
def test_bad_inputs_raise_type_error(model: Longformer2Vec, bad: object, needle: str) -> None:
    with pytest.raises(TypeError, match=re.escape(needle)):
        model.encode(bad)  # type: ignore[arg-type]


def test_bulk_encode_rejects_bare_string(model: Longformer2Vec) -> None:
    with pytest.raises(TypeError, match="got a str"):
        model.bulk_encode("abc")  # type: ignore[arg-type]


@pytest.mark.parametrize("texts", [["ok", "bad \ud800 text"], "bad \udcff"])
def test_lone_surrogate_names_item_and_position(model: Longformer2Vec, texts: object) -> None:
    """A string UTF-8 cannot encode is refused with its index and position, before the tokenizer."""
    where = "texts\\[1\\]" if isinstance(texts, list) else "text"
    with pytest.raises(
        ValueError, match=where + r" is not valid Unicode: lone surrogate .* at character \d+"
    ):
        model.encode(texts)  # type: ignore[arg-type]


def test_cls_pooling_and_global_attention(stub_dir: Path, stub_table: np.ndarray) -> None:
    cls = Longformer2Vec(str(stub_dir), pooling="cls")
    np.testing.assert_allclose(cls.encode("dog walks"), stub_table[BOS], rtol=1e-6)
    cls_global = Longformer2Vec(str(stub_dir), pooling="cls", global_attention="cls")
    np.testing.assert_allclose(cls_global.encode("dog"), stub_table[BOS] + global_vector(), rtol=1e-6)
    mean_global = Longformer2Vec(str(stub_dir), global_attention="cls")
    ids = mean_global.tokenizer.encode("dog walks").ids
    np.testing.assert_allclose(
        mean_global.encode("dog walks"), oracle_vector(stub_table, ids, global_first=True), rtol=1e-5
    )
    # long text with cls pooling: every window starts with <s>, so the weighted mean is table[<s>]
    np.testing.assert_allclose(cls.encode(LONG_TEXT), stub_table[BOS], rtol=1e-5)


def test_normalize(stub_dir: Path, model: Longformer2Vec) -> None:
    normed = Longformer2Vec(str(stub_dir), normalize=True, chunk_overlap=5)
    texts = ["dog", LONG_TEXT, ""]
    for raw, unit in zip(model.bulk_encode(texts), normed.bulk_encode(texts), strict=True):
        assert np.linalg.norm(unit) == pytest.approx(1.0, abs=1e-5)
        np.testing.assert_allclose(unit, np.array(raw) / np.linalg.norm(raw), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"pooling": "max"}, "pooling"),
        ({"global_attention": "all"}, "global_attention"),
        ({"precision": "bf16"}, "precision"),
        ({"batch_size": 0}, "batch_size"),
        ({"chunk_overlap": -1}, "overlap"),
        ({"max_batch_tokens": 0}, "max_batch_tokens"),
    ],
)
def test_invalid_arguments(stub_dir: Path, kwargs: dict[str, object], needle: str) -> None:
    with pytest.raises(ValueError, match=needle):
        Longformer2Vec(str(stub_dir), **kwargs)  # type: ignore[arg-type]


def test_metadata(model: Longformer2Vec, stub_dir: Path) -> None:
    assert model.model_dir == stub_dir
    assert model.manifest.model_id == "stub/longformer-tiny"
    assert model.max_length == 32
    assert "CPUExecutionProvider" in model.providers
    assert isinstance(model.definition, ModelDefinition)
    assert model.definition.model_name == "Stub Longformer"
    assert model.definition.extra == {"custom_key": "kept"}
    assert "stub/longformer-tiny" in repr(model)
    assert model.embed(["dog"]).dtype == np.float32


def test_intra_op_threads_and_explicit_providers(stub_dir: Path) -> None:
    m = Longformer2Vec(str(stub_dir), providers=["CPUExecutionProvider"], intra_op_num_threads=1)
    assert m.providers == ["CPUExecutionProvider"]
    assert len(m.encode("dog")) == HIDDEN


def test_max_batch_tokens_defaults_by_device(stub_dir: Path) -> None:
    """CPU calls are kept small (faster per token there), GPU calls big; a given value always wins."""
    from longformer2vec.encoder import default_max_batch_tokens

    assert Longformer2Vec(str(stub_dir)).max_batch_tokens == 2048
    assert Longformer2Vec(str(stub_dir), max_batch_tokens=300).max_batch_tokens == 300
    assert default_max_batch_tokens(["CUDAExecutionProvider", "CPUExecutionProvider"]) == 8192
    assert default_max_batch_tokens(["CPUExecutionProvider"]) == 2048


def test_token_budget_batches_bound_rows_and_padded_tokens() -> None:
    from longformer2vec.batching import token_budget_batches

    lengths = [4096, 10, 300, 4000, 12, 4096, 5000, 11]
    batches = list(token_budget_batches(lengths, max_items=3, max_tokens=8192, multiple=8))
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    for batch in batches:
        longest = max(lengths[i] if lengths[i] <= 8 else -(-lengths[i] // 8) * 8 for i in batch)
        assert len(batch) <= 3 and (len(batch) == 1 or len(batch) * longest <= 8192)
    assert [5000] in [[lengths[i] for i in b] for b in batches]  # over budget alone: runs alone


def test_each_text_is_checked_and_tokenized_once(model: Longformer2Vec, monkeypatch) -> None:
    from longformer2vec import text as text_module

    checked: list[object] = []
    real = text_module.text_problem
    monkeypatch.setattr(text_module, "text_problem", lambda value: checked.append(value) or real(value))
    model.encode("dog")
    assert checked == ["dog"]
    checked.clear()
    model.bulk_encode(["a", "b"])
    vectors, counts = model.encode_numpy_with_token_counts(["a", "b c"])
    assert checked == ["a", "b", "a", "b c"] and counts.tolist() == [
        len(model.tokenizer.encode(t).ids) for t in ("a", "b c")
    ]
    assert vectors.shape == (2, HIDDEN)
