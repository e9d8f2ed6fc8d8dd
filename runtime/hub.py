"""Which model directory: a model name becomes an exported directory (exported into the cache on first
use when possible). Which graph of it runs is :mod:`.placement`'s to say."""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable
from pathlib import Path

from .contract import (
    MANIFEST_FILE,
    PRECISIONS,
    graph_file,
    is_model_dir,
    read_manifest,
)
from .errors import ExportUnavailableError, ModelLoadError
from .extras import is_missing
from .locking import file_lock

log = logging.getLogger("longformer2vec")

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


def cache_key(model_name: str) -> str:
    """Folder name for a model id, e.g. `allenai--longformer-base-4096`; a local HF checkpoint is keyed
    on its absolute path. One folder holds every precision exported for the model."""
    name = str(model_name).strip().rstrip("/\\")
    if Path(name).expanduser().is_dir():
        name = str(Path(name).expanduser().resolve()).lstrip("/\\")
    return name.replace("\\", "/").replace("/", "--").replace(":", "")


def _holds(model_dir: Path, precision: str, global_tokens: bool) -> bool:
    try:
        return read_manifest(model_dir).find(precision, global_tokens) is not None
    except ModelLoadError:
        return False


def resolve_model(
    model_name: str | os.PathLike[str],
    cache_dir: str | Path | None = None,
    *,
    precision: str | Callable[[], str] = "fp32",
    global_tokens: bool = False,
) -> Path:
    """Return an exported model directory for `model_name`.

    A directory with `manifest.json` is used as it is. A hub id or a local HF checkpoint maps to
    `<cache>/<id with / -> -->`; when that folder lacks the graph asked for (`precision`, and with
    `global_tokens` one that takes `global_attention_mask`), it is exported and added there. This is
    the runtime's one entry point into :mod:`longformer2vec.export` (needs the export extra).
    `precision` may be a function, asked only when a name is not a directory (the device's preference).
    """
    local = Path(model_name).expanduser()
    if is_model_dir(local):
        return local
    if callable(precision):
        precision = precision()
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if not local.exists() and not looks_like_hub_id(str(model_name)):
        raise ModelLoadError(f"Model directory not found: {local} (and {str(model_name)!r} is not a hub id)")
    if local.is_dir() and not (local / "config.json").is_file():
        raise ModelLoadError(
            f"{local} is neither an exported longformer2vec directory (no {MANIFEST_FILE}) "
            "nor a Hugging Face checkpoint (no config.json)"
        )
    root = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    target = root / cache_key(str(model_name))
    if _holds(target, precision, global_tokens):
        return target
    try:
        from longformer2vec.export import export_model  # heavy: torch + transformers
    except ImportError as exc:
        raise ExportUnavailableError(str(model_name), reason=str(exc)) from exc
    with file_lock(root / f".{target.name}.lock"):
        if not _holds(target, precision, global_tokens):  # another process may have finished meanwhile
            log.info("exporting %s (%s) into %s", model_name, precision, target)
            try:
                export_model(str(model_name), target, precision=precision, global_tokens=global_tokens)
            except ModuleNotFoundError as exc:  # export deps imported lazily inside export_model
                if not is_missing(exc, "export"):
                    raise
                raise ExportUnavailableError(str(model_name), reason=str(exc)) from exc
    if not _holds(target, precision, global_tokens):
        raise ModelLoadError(f"export of {model_name!r} did not produce {target / graph_file(precision)}")
    return target
