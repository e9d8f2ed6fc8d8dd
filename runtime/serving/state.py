"""What the routes of one server share: its settings, metrics, and (once loaded) the model and batcher."""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from ..encoder import Longformer2Vec
from ..hub import public_model_id
from .batcher import MicroBatcher
from .config import ServeConfig
from .metrics import Metrics

# asyncio's default executor size: tokenization runs on as many threads as asyncio.to_thread would use
TOKENIZATION_WORKERS = min(32, (os.cpu_count() or 1) + 4)


@dataclass
class ServerState:
    config: ServeConfig
    metrics: Metrics = field(default_factory=Metrics)
    model: Longformer2Vec | None = None
    batcher: MicroBatcher | None = None
    load_error: str | None = None
    on_load_error: Callable[[], None] | None = None
    stopping: Callable[[], bool] = lambda: False  # whether the server is shutting down (serve() sets it)
    tokenizer_pool: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(
            TOKENIZATION_WORKERS, thread_name_prefix="longformer2vec-tok"
        )
    )

    @property
    def served_name(self) -> str:
        """`--served-model-name`, else the model's public id (:func:`..hub.public_model_id`)."""
        if self.config.served_model_name is not None:
            return self.config.served_model_name
        if self.model is not None:
            return public_model_id(self.model.manifest)
        return "(loading)"
