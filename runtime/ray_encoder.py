"""`Longformer2VecBatchEncoder`: a callable class for Ray Data's `map_batches` (the `ray` extra).

    import ray
    from longformer2vec import Longformer2VecBatchEncoder

    ds = ray.data.read_parquet("s3://bucket/docs/")  # columns: id, text
    vectors = ds.map_batches(
        Longformer2VecBatchEncoder,
        fn_constructor_kwargs={"model": "/shared/longformer-base-4096-int8", "intra_op_num_threads": 4},
        concurrency=8,  # actors; each loads the model once and keeps its ONNX session
        num_cpus=4,
        batch_size=64,
    )
    vectors.write_parquet("s3://bucket/vectors/")

Ray constructs the class once per actor, so the ONNX session is created once per actor and reused for
every batch. GPU actors: `fn_constructor_kwargs={..., "providers": ["CUDAExecutionProvider",
"CPUExecutionProvider"]}` with `num_gpus=1`. Nothing here imports Ray: the class takes and returns plain
batches, so it also works (and is tested) without Ray.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import numpy as np

from .encoder import Longformer2Vec


class Longformer2VecBatchEncoder:
    """Adds a `vector_column` (float32 [n, vector_length]) to each batch; every other column passes through.

    `model` is an exported model directory (or hub id) reachable from every node; `model_kwargs` go to
    `Longformer2Vec` (`providers=`, `intra_op_num_threads=`, `batch_size=`, `normalize=`, ...).
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
        self.model = Longformer2Vec(model, **model_kwargs)
        self.text_column = text_column
        self.id_column = id_column
        self.vector_column = vector_column

    def __call__(self, batch: Any) -> dict[str, np.ndarray]:
        """`batch`: dict of numpy arrays (Ray's default), a pandas DataFrame or a pyarrow Table."""
        columns = _as_numpy_columns(batch)
        if self.text_column not in columns:
            raise KeyError(f"batch has no column {self.text_column!r} (columns: {', '.join(columns)})")
        texts = columns[self.text_column].tolist()
        for i, text in enumerate(texts):
            if not isinstance(text, str):
                raise TypeError(f"row {self._row_name(columns, i)}: text is {type(text).__name__}, not str")
        columns[self.vector_column] = self.model.encode_numpy(texts)
        return columns

    def _row_name(self, columns: Mapping[str, np.ndarray], i: int) -> str:
        if self.id_column is not None and self.id_column in columns:
            value = columns[self.id_column][i]
            value = value.item() if isinstance(value, np.generic) else value  # id=7, not id=np.int64(7)
            return f"{self.id_column}={value!r}"
        return f"#{i} of the batch"


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
