"""Resolve a model name to an exported directory, exporting into the cache on first use when possible."""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator
from pathlib import Path

from .errors import ExportUnavailableError, ModelLoadError
from .manifest import is_model_dir, load_model_dir

PRECISIONS = ("fp32", "int8", "fp16")  # what export_model writes; the one list CLI and API check against
LAYOUTS = ("cpu", "gpu", "fused")  # graph layouts export_model can write (export.model.LongformerForExport)
EXPORT_DEPENDENCIES = frozenset({"torch", "transformers", "onnx", "onnxruntime"})


def is_missing_export_dependency(error: ImportError) -> bool:
    """Whether an import error means the `export` extra is not installed (not a bug elsewhere)."""
    return (error.name or "").split(".")[0] in EXPORT_DEPENDENCIES


_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")


def looks_like_hub_id(name: str) -> bool:
    """Whether `name` is spelled like a hub id (`org/name` or `name`), which `resolve_model` may export."""
    return bool(_HUB_ID.match(name))


def default_cache_dir() -> Path:
    """`$LONGFORMER2VEC_CACHE`, else `$XDG_CACHE_HOME/longformer2vec`, else `~/.cache/longformer2vec`."""
    if env := os.environ.get("LONGFORMER2VEC_CACHE"):
        return Path(env).expanduser()
    if xdg := os.environ.get("XDG_CACHE_HOME"):
        return Path(xdg).expanduser() / "longformer2vec"
    return Path.home() / ".cache" / "longformer2vec"


def cache_key(model_name: str, precision: str, global_tokens: bool = False) -> str:
    """Folder name for a model id, e.g. `allenai--longformer-base-4096-int8`, and
    `allenai--longformer-base-4096-int8-global` for a graph that also takes global tokens."""
    name = str(model_name).strip().rstrip("/\\")
    if Path(name).expanduser().is_dir():  # local HF checkpoint: key on its absolute path
        name = str(Path(name).expanduser().resolve()).lstrip("/\\")
    name = name.replace("\\", "/").replace("/", "--").replace(":", "")
    return f"{name}-{precision}" + ("-global" if global_tokens else "")


@contextlib.contextmanager
def _export_lock(path: Path) -> Iterator[None]:
    """Best-effort inter-process lock so two processes do not export the same model at once."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as fh:
        try:
            import fcntl
        except ImportError:  # Windows: no lock; the exporter's atomic rename still avoids torn dirs
            yield
            return
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def _accepts_global_tokens(model_dir: Path) -> bool:
    try:
        return load_model_dir(model_dir, verify_hash=False).accepts_global_tokens
    except ModelLoadError:
        return False


def resolve_model(
    model_name: str | os.PathLike[str],
    precision: str,
    cache_dir: str | Path | None = None,
    global_tokens: bool = False,
) -> Path:
    """Return an exported model directory for `model_name`.

    A directory with `manifest.json` is used as is. Anything else (hub id or local HF checkpoint) maps to
    `<cache>/<id with / -> -->-<precision>`, exported there on first use if the export extra is installed,
    without global attention (the graph VectorHub's `encode` computes, with fewer nodes). `global_tokens`
    asks for a graph that also takes `global_attention_mask`: the plain folder when it holds one (exports
    of earlier versions did), else `<...>-<precision>-global`.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    local = Path(model_name).expanduser()
    if is_model_dir(local):
        return local
    if not local.exists() and not _HUB_ID.match(str(model_name)):
        raise ModelLoadError(f"Model directory not found: {local} (and {str(model_name)!r} is not a hub id)")
    if local.is_dir() and not (local / "config.json").is_file():
        raise ModelLoadError(
            f"{local} is neither an exported longformer2vec directory (no manifest.json) "
            "nor a Hugging Face checkpoint (no config.json)"
        )
    root = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    target = root / cache_key(str(model_name), precision)
    if global_tokens and not (is_model_dir(target) and _accepts_global_tokens(target)):
        target = root / cache_key(str(model_name), precision, global_tokens=True)
    if is_model_dir(target):
        return target
    try:
        from longformer2vec.export import export_model  # heavy: torch + transformers
    except ImportError as exc:
        raise ExportUnavailableError(str(model_name), reason=str(exc)) from exc
    with _export_lock(root / f".{target.name}.lock"):
        if not is_model_dir(target):  # another process may have finished while we waited
            try:
                export_model(str(model_name), target, precision=precision, global_tokens=global_tokens)
            except ModuleNotFoundError as exc:  # export deps imported lazily inside export_model
                if not is_missing_export_dependency(exc):
                    raise
                raise ExportUnavailableError(str(model_name), reason=str(exc)) from exc
    if not is_model_dir(target):
        raise ModelLoadError(f"export of {model_name!r} did not produce {target / 'manifest.json'}")
    return target
