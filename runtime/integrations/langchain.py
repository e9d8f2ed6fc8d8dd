"""LangChain's `Embeddings` over `Longformer2Vec`: long documents get the windowed whole-text vector
(LangChain's Hugging Face and sentence-transformers classes cut them at the model maximum).

    from longformer2vec.integrations.langchain import Longformer2VecEmbeddings

    embeddings = Longformer2VecEmbeddings("longformer-base-4096")  # any Longformer2Vec argument
    store = InMemoryVectorStore.from_texts(texts, embedding=embeddings)
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from langchain_core.embeddings import Embeddings

from ..encoder import DEFAULT_MODEL, Longformer2Vec


class Longformer2VecEmbeddings(Embeddings):
    """`model` is what `Longformer2Vec` takes (an exported directory, a hub id, a local checkpoint) or a
    `Longformer2Vec` already built; `options` are its keyword options (`normalize=True`, `precision=`...).
    Documents and queries are embedded alike: the model has no query instruction."""

    def __init__(
        self, model: str | os.PathLike[str] | Longformer2Vec = DEFAULT_MODEL, **options: Any
    ) -> None:
        if isinstance(model, Longformer2Vec):
            if options:
                raise TypeError("options are for building a model; this one is built already")
            self.model = model
        else:
            self.model = Longformer2Vec(model, **options)

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.model.bulk_encode(list(texts))

    def embed_query(self, text: str) -> list[float]:
        return self.model.encode(text)  # type: ignore[return-value]

    # ONNX Runtime releases the GIL while it runs: a worker thread keeps the event loop free.
    async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
        return await asyncio.to_thread(self.embed_documents, texts)

    async def aembed_query(self, text: str) -> list[float]:
        return await asyncio.to_thread(self.embed_query, text)
