"""Optional extras: which imports each one brings, and the one install hint every error gives."""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

# extra -> top-level modules whose absence means the extra is not installed (not a bug elsewhere)
EXTRA_MODULES: dict[str, frozenset[str]] = {
    "export": frozenset({"torch", "transformers", "onnx", "onnxruntime"}),
    "serve": frozenset({"fastapi", "starlette", "pydantic", "uvicorn", "prometheus_client"}),
    "corpus": frozenset({"pyarrow", "tqdm"}),
    "ray": frozenset({"ray", "pyarrow", "pandas"}),
}


def install_hint(extra: str) -> str:
    """How to install an extra. From a checkout (an editable install: this package's folder sits beside
    the repository's pyproject.toml) it is the editable install with the extra; an installed wheel has
    no checkout to run that in, so the hint names the extra's own packages, from the wheel's metadata."""
    package_dir = Path(__file__).resolve().parent
    if (package_dir.parent / "pyproject.toml").is_file():
        return f"run `pip install -e '.[{extra}]'` in the longformer2vec checkout"
    try:
        requires = metadata.requires("longformer2vec") or []
    except metadata.PackageNotFoundError:
        requires = []
    marker = f'extra == "{extra}"'
    packages = [r.split(";")[0].strip() for r in requires if marker in r.replace("'", '"')]
    if not packages:
        return f"install longformer2vec with its {extra!r} extra"
    return "run `pip install " + " ".join(f"'{p}'" for p in packages) + "`"


def is_missing(error: ImportError, extra: str) -> bool:
    """Whether ``error`` means ``extra`` is not installed."""
    return (error.name or "").split(".")[0] in EXTRA_MODULES[extra]


def missing_message(error: ImportError, what: str, extra: str) -> str:
    """``<what> needs the <extra> extra (<error>): run ...``, the CLI's one-line answer."""
    return f"{what} needs the {extra} extra ({error}): {install_hint(extra)}"
