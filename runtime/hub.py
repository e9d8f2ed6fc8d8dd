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
    Manifest,
    graph_file,
    is_model_dir,
    read_manifest,
)
from .errors import ExportUnavailableError, ModelLoadError
from .extras import is_missing
from .hub_probe import hub_problem
from .locking import file_lock

log = logging.getLogger("longformer2vec")

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")


def looks_like_hub_id(name: str) -> bool:
    """Whether `name` is spelled like a hub id (`org/name` or `name`), which `resolve_model` may export."""
    return bool(_HUB_ID.match(name))


def public_model_id(manifest: Manifest) -> str:
    """The model's name for the outside world (the server's model id, a corpus output's metadata): the
    id it was exported from when that is spelled like a hub id, else the export directory's name. A
    local checkpoint's path stays in the manifest only: it means nothing to a client and tells it about
    the server's disk."""
    source = manifest.model_id
    return source if looks_like_hub_id(source) else manifest.model_dir.resolve().name


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


WEIGHT_FILES = (
    "model.safetensors",
    "pytorch_model.bin",
    "model.safetensors.index.json",
    "pytorch_model.bin.index.json",
)


def check_checkpoint(local: Path) -> None:
    """Refuse, in one line, a directory that is neither an export nor a checkpoint the exporter can read:
    no config.json, or a config.json without weights (a damaged or half-copied export has its config
    and graphs but no manifest)."""
    if not (local / "config.json").is_file():
        raise ModelLoadError(
            f"{local} is neither an exported longformer2vec directory (no {MANIFEST_FILE}) "
            "nor a Hugging Face checkpoint (no config.json)"
        )
    if not any((local / name).is_file() for name in WEIGHT_FILES):
        if (local / "onnx").is_dir() or any(local.glob("*.onnx")):
            raise ModelLoadError(
                f"{local} looks like a damaged or partly copied longformer2vec export: it has config.json "
                f"and ONNX graphs but no {MANIFEST_FILE}; copy or export it again"
            )
        raise ModelLoadError(
            f"{local} has config.json but neither {MANIFEST_FILE} (a longformer2vec export) nor weights "
            f"({WEIGHT_FILES[0]} or {WEIGHT_FILES[1]}, a Hugging Face checkpoint); copy or export it again"
        )


def _exporter(name: str, missing_dir: str | None = None):
    """The exporter's entry point, or ExportUnavailableError when the export extra is not installed
    (checked by finding its modules, so a runtime-only install fails before any probe or lock)."""
    from importlib.util import find_spec

    try:
        from longformer2vec.export import export_model
    except ImportError as exc:
        raise ExportUnavailableError(name, reason=str(exc), missing_dir=missing_dir) from exc
    missing = [module for module in ("torch", "transformers", "onnx") if find_spec(module) is None]
    if missing:
        raise ExportUnavailableError(name, reason=f"No module named {missing[0]!r}", missing_dir=missing_dir)
    return export_model


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
    name = str(model_name)
    if not local.exists() and not looks_like_hub_id(name):
        raise ModelLoadError(f"Model directory not found: {local} (and {name!r} is not a hub id)")
    if local.is_dir():
        check_checkpoint(local)
    root = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    target = root / cache_key(name)
    if _holds(target, precision, global_tokens):
        return target
    export_model = _exporter(name, None if local.is_dir() else str(local.absolute()))
    if not local.is_dir() and (problem := hub_problem(name)) is not None:
        raise ModelLoadError(
            f"cannot load model {name!r}: there is no directory {local.absolute()}, and {problem}. Pass "
            f"an exported directory, or export it where the hub is reachable (`longformer2vec export "
            f"{name} --output DIR`) and load DIR"
        )
    with file_lock(root / f".{target.name}.lock"):
        if not _holds(target, precision, global_tokens):  # another process may have finished meanwhile
            log.info("exporting %s (%s) into %s", model_name, precision, target)
            try:
                export_model(name, target, precision=precision, global_tokens=global_tokens)
            except ModuleNotFoundError as exc:  # export deps imported lazily inside export_model
                if not is_missing(exc, "export"):
                    raise
                raise ExportUnavailableError(name, reason=str(exc)) from exc
            except (OSError, ValueError) as exc:  # transformers' OSError, a model that is no Longformer
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                raise ModelLoadError(f"cannot export {name!r}: {first}") from exc
    if not _holds(target, precision, global_tokens):
        raise ModelLoadError(f"export of {model_name!r} did not produce {target / graph_file(precision)}")
    return target
