"""HTTP serving (`longformer2vec serve`): OpenAI and TEI embedding routes over the same runtime code.

Needs the `serve` extra (FastAPI, uvicorn, prometheus-client). This package's `__init__`, `config`,
`batcher`, `tokens` and `listen` modules import none of them, so `import longformer2vec` and the CLI
keep working without the extra; the other modules import the web stack.
"""

from __future__ import annotations
