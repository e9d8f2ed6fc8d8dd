"""fastembed's TextEmbedding on an exported directory, registered with ``add_custom_model``.

Run by tests/clients/test_consumers.py with the consumer environment's Python. ``specific_model_path``
points fastembed at the local directory, so the hub name in ``sources`` is never fetched.
Reads ``{"dir": ..., "texts": [...], "dim": int}`` on stdin, writes ``{"vectors": [...]}``.
"""

from __future__ import annotations

import json
import sys

from fastembed import TextEmbedding
from fastembed.common.model_description import ModelSource, PoolingType


def main() -> None:
    request = json.load(sys.stdin)
    TextEmbedding.add_custom_model(
        model="longformer2vec/exported",
        pooling=PoolingType.MEAN,
        normalization=False,
        sources=ModelSource(hf="longformer2vec/exported"),
        dim=request["dim"],
        model_file="onnx/model.onnx",
    )
    model = TextEmbedding(model_name="longformer2vec/exported", specific_model_path=request["dir"])
    vectors = [vector.tolist() for vector in model.embed(request["texts"])]
    json.dump({"vectors": vectors}, sys.stdout)


if __name__ == "__main__":
    main()
