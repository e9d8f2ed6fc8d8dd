"""optimum's ORTModelForFeatureExtraction on an exported directory, with the directory's tokenizer.

Run by tests/clients/test_consumers.py with the consumer environment's Python. The mean pooling of
``last_hidden_state`` over the attention mask is the caller's, as in optimum's feature-extraction docs.
Reads ``{"dir": ..., "texts": [...]}`` on stdin, writes ``{"vectors": [...]}``.
"""

from __future__ import annotations

import json
import sys

from optimum.onnxruntime import ORTModelForFeatureExtraction
from transformers import AutoTokenizer


def main() -> None:
    request = json.load(sys.stdin)
    tokenizer = AutoTokenizer.from_pretrained(request["dir"])
    model = ORTModelForFeatureExtraction.from_pretrained(request["dir"])
    inputs = tokenizer(request["texts"], padding=True, truncation=True, return_tensors="pt")
    hidden = model(**inputs).last_hidden_state
    mask = inputs["attention_mask"].unsqueeze(-1).to(hidden.dtype)
    vectors = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
    json.dump({"vectors": vectors.tolist(), "tokenizer_class": type(tokenizer).__name__}, sys.stdout)


if __name__ == "__main__":
    main()
