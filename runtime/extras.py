"""Optional extras: which imports each one brings, and the one install hint every error gives."""

from __future__ import annotations

# extra -> top-level modules whose absence means the extra is not installed (not a bug elsewhere)
EXTRA_MODULES: dict[str, frozenset[str]] = {
    "export": frozenset({"torch", "transformers", "onnx", "onnxruntime"}),
    "serve": frozenset({"fastapi", "starlette", "pydantic", "uvicorn", "prometheus_client"}),
    "corpus": frozenset({"pyarrow", "tqdm"}),
    "ray": frozenset({"ray", "pyarrow", "pandas"}),
}


def install_hint(extra: str) -> str:
    """How to install an extra: longformer2vec is installed from its repository (no package index
    carries it), so the hint is the editable install from a checkout."""
    return f"run `pip install -e '.[{extra}]'` in the longformer2vec checkout"


def is_missing(error: ImportError, extra: str) -> bool:
    """Whether ``error`` means ``extra`` is not installed."""
    return (error.name or "").split(".")[0] in EXTRA_MODULES[extra]


def missing_message(error: ImportError, what: str, extra: str) -> str:
    """``<what> needs the <extra> extra (<error>): run ...``, the CLI's one-line answer."""
    return f"{what} needs the {extra} extra ({error}): {install_hint(extra)}"
