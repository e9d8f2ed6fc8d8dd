"""Which model directory and which graph: a model name becomes an exported directory (exported into the
cache on first use when possible), and a directory's manifest yields the graph a session runs."""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Sequence
from pathlib import Path

from .contract import (
    MANIFEST_FILE,
    PRECISIONS,
    GraphEntry,
    Manifest,
    graph_file,
    is_model_dir,
    read_manifest,
)
from .errors import ExportUnavailableError, ModelLoadError
from .extras import is_missing
from .locking import file_lock

log = logging.getLogger("longformer2vec")

GLOBAL_ATTENTIONS = ("none", "cls")
# What a session prefers when the caller names no precision: int8 on the CPU, fp16 on CUDA.
CPU_PRECISION_ORDER = ("int8", "fp32", "fp16")
CUDA_PRECISION_ORDER = ("fp16", "fp32", "int8")

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


def resolve_model(
    model_name: str | os.PathLike[str],
    precision: str,
    cache_dir: str | Path | None = None,
    global_tokens: bool = False,
) -> Path:
    """Return an exported model directory for `model_name`.

    A directory with `manifest.json` is used as it is. A hub id or a local HF checkpoint maps to
    `<cache>/<id with / -> -->`; when that folder lacks the graph asked for (`precision`, and with
    `global_tokens` one that takes `global_attention_mask`), it is exported and added there. This is
    the runtime's one entry point into :mod:`longformer2vec.export` (needs the export extra).
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    local = Path(model_name).expanduser()
    if is_model_dir(local):
        return local
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


def _export_hint(manifest: Manifest, precision: str, global_tokens: bool) -> str:
    flags = f"--precision {precision}" + (" --global-tokens" if global_tokens else "")
    return (
        f"add it with `longformer2vec export {manifest.model_id} --output {manifest.model_dir} {flags}` "
        "(exporting into an existing directory adds the graph)"
    )


def choose_graph(
    manifest: Manifest, precision: str | None, global_attention: str, cpu_only: bool
) -> GraphEntry:
    """The graph a session runs: `precision` if given, else the device's preference (int8 on the CPU,
    fp16 on CUDA) among those present. `global_attention="cls"` needs a graph that takes global tokens;
    `"none"` prefers one that does not (fewer nodes) and else feeds zeros to one that does."""
    if global_attention not in GLOBAL_ATTENTIONS:
        raise ValueError(
            f"global_attention must be one of {list(GLOBAL_ATTENTIONS)}, got {global_attention!r}"
        )
    needs_global = global_attention != "none"
    usable = [g for g in manifest.graphs if g.global_tokens or not needs_global]
    if precision is not None:
        usable = [g for g in usable if g.precision == precision]
    if not usable:
        wanted = precision or (CPU_PRECISION_ORDER if cpu_only else CUDA_PRECISION_ORDER)[0]
        what = f"a {precision or 'any'}-precision graph" + (
            " that takes global tokens" if needs_global else ""
        )
        raise ModelLoadError(
            f"{manifest.model_dir} has no {what} (it holds: {manifest.graph_summary()}); "
            f"{_export_hint(manifest, wanted, needs_global)}"
        )
    order: Sequence[str] = CPU_PRECISION_ORDER if cpu_only else CUDA_PRECISION_ORDER
    return min(usable, key=lambda g: (order.index(g.precision), g.global_tokens != needs_global))
