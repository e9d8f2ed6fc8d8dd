"""What `GET /info` (TEI's schema) and `GET /v1/models` (OpenAI's list) say about the served model."""

from __future__ import annotations

import datetime as dt
from typing import Any

from .. import __version__
from ..encoder import Longformer2Vec
from ..hub import public_model_id
from .config import ServeConfig

OWNED_BY = "longformer2vec"
# manifest precision -> TEI's `model_dtype` spelling (TEI: "float32", "float16", "bfloat16")
DTYPES = {"fp32": "float32", "fp16": "float16", "int8": "int8"}


def created_at(model: Longformer2Vec) -> int:
    """Unix time the graph was exported (the manifest's `created`), else the graph file's mtime, else 0."""
    text = model.graph.created
    if text:
        try:
            when = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            pass
        else:
            if when.tzinfo is None:
                when = when.replace(tzinfo=dt.timezone.utc)
            return int(when.timestamp())
    try:
        return int(model.graph.path.stat().st_mtime)
    except OSError:
        return 0


def model_card(model: Longformer2Vec, name: str) -> dict[str, Any]:
    """One entry of OpenAI's model list (`GET /v1/models`, `GET /v1/models/{id}`); `name` is the served
    model name."""
    return {
        "id": name,
        "object": "model",
        "created": created_at(model),
        "owned_by": OWNED_BY,
    }


def model_list(model: Longformer2Vec, name: str) -> dict[str, Any]:
    return {"object": "list", "data": [model_card(model, name)]}


def tei_info(
    model: Longformer2Vec, config: ServeConfig, tokenization_workers: int, name: str
) -> dict[str, Any]:
    """TEI's `Info` (router/src/lib.rs) with this server's values.

    `model_id` is the model's public id (the hub id, else the export directory's name; the path of a
    local checkpoint stays in the manifest), `served_model_name` the name the API answers with.
    `model_sha` is the graph's sha256 (TEI: the hub revision); `max_input_length` the tokens the model
    takes in one pass (a longer text is embedded as windows, or cut with `truncate`);
    `max_concurrent_requests` is `--max-queue`, `max_client_batch_size` `--max-inputs-per-request`;
    `sha` and `docker_label` (TEI's build) are null.
    """
    return {
        "model_id": public_model_id(model.manifest),
        "model_sha": model.graph.sha256 or None,
        "model_dtype": DTYPES.get(model.precision, model.precision),
        "served_model_name": name,
        "model_type": {"embedding": {"pooling": model.pooling}},
        "max_concurrent_requests": config.max_queue,
        "max_input_length": model.max_length,
        "max_batch_tokens": model.max_batch_tokens,
        "max_batch_requests": config.max_batch_requests,
        "max_client_batch_size": config.max_inputs_per_request,
        "auto_truncate": False,
        "tokenization_workers": tokenization_workers,
        "version": __version__,
        "sha": None,
        "docker_label": None,
    }
