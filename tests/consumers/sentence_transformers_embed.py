"""sentence-transformers' ONNX backend on an exported directory, loaded as its docs load a local model.

Run by tests/clients/test_consumers.py with the consumer environment's Python (sentence-transformers and
optimum-onnx pin transformers < 4.58, which the project's own environment does not). Reads
``{"dir": ..., "texts": [...], "file_name": optional}`` on stdin, writes ``{"vectors": [...]}``.
"""

from __future__ import annotations

import json
import sys

from sentence_transformers import SentenceTransformer


def main() -> None:
    request = json.load(sys.stdin)
    if request.get("file_name"):
        model = SentenceTransformer(
            request["dir"], backend="onnx", model_kwargs={"file_name": request["file_name"]}
        )
    else:
        model = SentenceTransformer(request["dir"], backend="onnx")
    vectors = model.encode(request["texts"])
    json.dump({"vectors": vectors.tolist(), "max_seq_length": model.max_seq_length}, sys.stdout)


if __name__ == "__main__":
    main()
