"""LlamaIndex's `BaseEmbedding` over `Longformer2Vec`: long documents get the windowed whole-text vector
(LlamaIndex's Hugging Face classes cut them at the model maximum).

    from longformer2vec.integrations.llama_index import Longformer2VecEmbedding

    embed_model = Longformer2VecEmbedding("longformer-base-4096")  # any Longformer2Vec argument
    index = VectorStoreIndex.from_documents(documents, embed_model=embed_model)
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from llama_index.core.base.embeddings.base import BaseEmbedding
from pydantic import PrivateAttr

from ..encoder import DEFAULT_MODEL, Longformer2Vec


class Longformer2VecEmbedding(BaseEmbedding):
    """`model_name` is what `Longformer2Vec` takes (an exported directory, a hub id, a local checkpoint);
    `model=` passes a `Longformer2Vec` already built instead; other keyword options go to
    `Longformer2Vec` (`normalize=True`, `precision=`...), except LlamaIndex's own (`embed_batch_size`,
    `callback_manager`). Queries and texts are embedded alike: the model has no query instruction."""

    _model: Longformer2Vec = PrivateAttr()

    def __init__(
        self,
        model_name: str | os.PathLike[str] = DEFAULT_MODEL,
        *,
        model: Longformer2Vec | None = None,
        embed_batch_size: int = 8,
        callback_manager: Any = None,
        **options: Any,
    ) -> None:
        if model is not None and options:
            raise TypeError("options are for building a model; `model` is built already")
        built = model if model is not None else Longformer2Vec(model_name, **options)
        super().__init__(
            model_name=str(built.model_dir if model is not None else model_name),
            embed_batch_size=embed_batch_size,
            callback_manager=callback_manager,
        )
        self._model = built

    @classmethod
    def class_name(cls) -> str:
        return "Longformer2VecEmbedding"

    @property
    def model(self) -> Longformer2Vec:
        return self._model

    def _get_query_embedding(self, query: str) -> list[float]:
        return self._model.encode(query)  # type: ignore[return-value]

    def _get_text_embedding(self, text: str) -> list[float]:
        return self._model.encode(text)  # type: ignore[return-value]

    def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        return self._model.bulk_encode(list(texts))

    # ONNX Runtime releases the GIL while it runs: a worker thread keeps the event loop free.
    async def _aget_query_embedding(self, query: str) -> list[float]:
        return await asyncio.to_thread(self._get_query_embedding, query)

    async def _aget_text_embedding(self, text: str) -> list[float]:
        return await asyncio.to_thread(self._get_text_embedding, text)

    async def _aget_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        return await asyncio.to_thread(self._get_text_embeddings, texts)
