"""`Longformer2VecBatchEncoder`: a callable class for Ray Data's `map_batches` (the `ray` extra).

    import ray
    from longformer2vec import Longformer2VecBatchEncoder

    ray.init()
    cpus_per_actor = 1
    actors = (int(ray.cluster_resources()["CPU"]) - 1) // cpus_per_actor  # >= 1: a CPU left to read, write
    vectors = ray.data.read_parquet("/shared/docs/").map_batches(  # columns: id, text
        Longformer2VecBatchEncoder,
        fn_constructor_kwargs={"model": "/shared/longformer-base-4096-int8"},
        compute=ray.data.ActorPoolStrategy(min_size=1, max_size=actors),
        num_cpus=cpus_per_actor,
        batch_size=64,
    )
    vectors.select_columns(["id", "vector"]).write_parquet("/shared/vectors/")

Ray constructs the class once per actor, so the ONNX session is created once per actor and reused for
every batch. The actors must leave at least one CPU of the cluster free: Ray Data schedules its read and
write tasks (1 CPU each) after the actors, and a pool holding every CPU waits forever. Inside an actor,
ONNX Runtime gets as many intra-op threads as the CPUs Ray reserved for it (`num_cpus`), not one per core
of the node. GPU actors: `fn_constructor_kwargs={..., "providers": ["CUDAExecutionProvider",
"CPUExecutionProvider"]}` with `num_gpus=1`. Nothing here imports Ray: the class takes and returns plain
batches, so it also works (and is tested) without Ray.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from typing import Any

import numpy as np

from .encoder import Longformer2Vec
from .text import check_text


class Longformer2VecBatchEncoder:
    """Adds a `vector_column` (float32 [n, vector_length]) to each batch; every other column passes through.

    `model` is an exported model directory (or hub id) reachable from every node; `model_kwargs` go to
    `Longformer2Vec` (`providers=`, `intra_op_num_threads=`, `batch_size=`, `normalize=`, ...).
    Without `intra_op_num_threads` or `session_options`, an instance built inside a Ray actor runs ONNX
    Runtime on as many threads as the CPUs Ray reserved for the actor (at least 1): ONNX Runtime's own
    default, one thread per physical core of the node, oversubscribes a node that hosts several actors.
    A row whose text is not a string raises `TypeError` naming its id, instead of embedding a placeholder.
    """

    def __init__(
        self,
        model: str | os.PathLike[str],
        text_column: str = "text",
        id_column: str | None = "id",
        vector_column: str = "vector",
        **model_kwargs: Any,
    ) -> None:
        if "intra_op_num_threads" not in model_kwargs and "session_options" not in model_kwargs:
            cpus = _ray_actor_cpus()
            if cpus:
                model_kwargs["intra_op_num_threads"] = max(1, int(cpus))
        self.intra_op_num_threads: int | None = model_kwargs.get("intra_op_num_threads")
        self.model = Longformer2Vec(model, **model_kwargs)
        self.text_column = text_column
        self.id_column = id_column
        self.vector_column = vector_column

    def __call__(self, batch: Any) -> dict[str, np.ndarray]:
        """`batch`: dict of numpy arrays (Ray's default), a pandas DataFrame or a pyarrow Table."""
        columns = _as_numpy_columns(batch)
        if self.text_column not in columns:
            raise KeyError(f"batch has no column {self.text_column!r} (columns: {', '.join(columns)})")
        texts = [
            check_text(text, f"row {self._row_name(columns, i)}: text")
            for i, text in enumerate(columns[self.text_column].tolist())
        ]
        columns[self.vector_column] = self.model.encode_numpy(texts)
        return columns

    def _row_name(self, columns: Mapping[str, np.ndarray], i: int) -> str:
        if self.id_column is not None and self.id_column in columns:
            value = columns[self.id_column][i]
            value = value.item() if isinstance(value, np.generic) else value  # id=7, not id=np.int64(7)
            return f"{self.id_column}={value!r}"
        return f"#{i} of the batch"


def _ray_actor_cpus() -> float | None:
    """CPUs Ray reserved for the actor this runs in; None outside a Ray actor. Never imports Ray: a Ray
    worker process has imported it already, and a process that has not is no Ray actor."""
    ray = sys.modules.get("ray")
    if ray is None or not ray.is_initialized():
        return None
    context = ray.get_runtime_context()
    if context.get_actor_id() is None:  # the driver or a task, not an actor
        return None
    return context.get_assigned_resources().get("CPU")


def _as_numpy_columns(batch: Any) -> dict[str, np.ndarray]:
    if isinstance(batch, Mapping):
        return {name: np.asarray(values) for name, values in batch.items()}
    if hasattr(batch, "to_pydict") and hasattr(batch, "column_names"):  # pyarrow.Table
        return {name: batch.column(name).to_numpy(zero_copy_only=False) for name in batch.column_names}
    if hasattr(batch, "columns") and hasattr(batch, "to_numpy"):  # pandas.DataFrame
        return {str(name): batch[name].to_numpy() for name in batch.columns}
    raise TypeError(
        f"batch must be a dict of arrays, a pandas DataFrame or a pyarrow Table, got {type(batch)}"
    )
