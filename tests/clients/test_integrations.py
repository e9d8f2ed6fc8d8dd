"""The in-process framework classes, with the real packages: LangChain's `Embeddings` and LlamaIndex's
`BaseEmbedding` give `encode`'s vectors (a text three times the model maximum included), sync and async,
and work inside each framework's own vector index."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest

from longformer2vec import Longformer2Vec

TEXTS = [
    "The cat sat on the mat and looked out of the window.",
    "Quarterly revenue grew by twelve percent on strong exports.",
]


@pytest.fixture(scope="module")
def model(tiny_fp32_dir: Path) -> Longformer2Vec:
    return Longformer2Vec(tiny_fp32_dir)


@pytest.fixture(scope="module")
def texts(model: Longformer2Vec) -> list[str]:
    long = " ".join(f"chapter {i} of a long report on rivers and mountains" for i in range(60))
    assert len(model.tokenizer.encode(long).ids) > 3 * model.max_length
    return [*TEXTS, long]


def _same(got: object, want: object) -> None:
    diff = float(np.abs(np.asarray(got, dtype=np.float32) - np.asarray(want, dtype=np.float32)).max())
    print(f"max |difference| {diff:.1e}")
    assert diff <= 1e-6


def test_langchain_embeddings(model: Longformer2Vec, texts: list[str], tiny_fp32_dir: Path) -> None:
    pytest.importorskip("langchain_core")
    from langchain_core.vectorstores import InMemoryVectorStore

    from longformer2vec.integrations.langchain import Longformer2VecEmbeddings

    embeddings = Longformer2VecEmbeddings(tiny_fp32_dir)
    want = [model.encode(t) for t in texts]
    _same(embeddings.embed_documents(texts), want)
    _same(embeddings.embed_query(texts[2]), want[2])
    _same(asyncio.run(embeddings.aembed_documents(texts)), want)
    _same(asyncio.run(embeddings.aembed_query(texts[2])), want[2])
    _same(Longformer2VecEmbeddings(model).embed_query(texts[0]), want[0])  # a model built already
    normalized = Longformer2VecEmbeddings(tiny_fp32_dir, normalize=True).embed_query(texts[0])
    assert abs(np.linalg.norm(normalized) - 1) < 1e-5
    store = InMemoryVectorStore.from_texts(texts, embedding=embeddings)
    assert store.similarity_search(texts[2], k=1)[0].page_content == texts[2]
    with pytest.raises(TypeError, match="built already"):
        Longformer2VecEmbeddings(model, normalize=True)


def test_llama_index_embedding(model: Longformer2Vec, texts: list[str], tiny_fp32_dir: Path) -> None:
    pytest.importorskip("llama_index.core")
    from llama_index.core import Document, VectorStoreIndex

    from longformer2vec.integrations.llama_index import Longformer2VecEmbedding

    embed_model = Longformer2VecEmbedding(tiny_fp32_dir)
    want = [model.encode(t) for t in texts]
    _same(embed_model.get_text_embedding_batch(texts), want)
    _same(embed_model.get_query_embedding(texts[2]), want[2])
    _same(embed_model.get_text_embedding(texts[2]), want[2])
    _same(asyncio.run(embed_model.aget_text_embedding_batch(texts)), want)
    _same(asyncio.run(embed_model.aget_query_embedding(texts[2])), want[2])
    _same(Longformer2VecEmbedding(model=model).get_query_embedding(texts[0]), want[0])
    # One document per node: a splitter that keeps each text whole, so the long one is embedded whole.
    from llama_index.core.node_parser import SentenceSplitter

    index = VectorStoreIndex.from_documents(
        [Document(text=t) for t in texts],
        embed_model=embed_model,
        transformations=[SentenceSplitter(chunk_size=100_000)],
    )
    hits = index.as_retriever(similarity_top_k=1).retrieve(texts[2])
    assert hits[0].node.get_content() == texts[2]
