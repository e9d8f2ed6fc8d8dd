"""Write an exported directory: the files other tools read, the card, the manifest, and the move into
place (a new directory, or graphs added to an existing export of the same model).

What the files are is :mod:`longformer2vec.contract`'s to say; this module writes them (JSON
atomically, the manifest, the graphs an export adds to an earlier one).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from ..contract import (
    CARD_FILE,
    CONFIG_FILE,
    MANIFEST_FILE,
    PRECISIONS,
    TOKENIZER_FILE,
    GraphEntry,
    Manifest,
    read_manifest,
)
from ..document_graph import merge_document_graphs
from ..errors import ModelLoadError
from .consumer_files import consumer_files


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON under a temporary name and rename it into place, so readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as fh:
            fh.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_manifest(manifest: Manifest) -> None:
    write_json_atomic(manifest.path, manifest.to_json())


def write_consumer_files(model_dir: Path, files: Mapping[str, Any]) -> None:
    for relative, data in files.items():
        write_json_atomic(model_dir / relative, data)


def merge_graphs(existing: Iterable[GraphEntry], new: Iterable[GraphEntry]) -> list[GraphEntry]:
    """The graphs of a directory after an export adds ``new``: one per (precision, global tokens), the
    newer winning, in a stable order (plain before global, fp32, int8, fp16)."""
    by_key = {(g.precision, g.global_tokens): g for g in existing}
    by_key.update({(g.precision, g.global_tokens): g for g in new})
    return sorted(by_key.values(), key=lambda g: (g.global_tokens, PRECISIONS.index(g.precision)))


def card_text(model_id: str, vector_length: int) -> str:
    from ..models import card_path, default_card

    path = card_path(model_id)
    return path.read_text(encoding="utf-8") if path is not None else default_card(model_id, vector_length)


def special_tokens(tokenizer) -> dict[str, str]:
    """The HF tokenizer's special tokens as strings (``pad_token`` included when it has one)."""
    return {key: str(value) for key, value in tokenizer.special_tokens_map.items() if isinstance(value, str)}


def write_model_files(
    staging: Path, hf_model, tokenizer, runtime_tokenizer, model_id: str, max_length: int
) -> None:
    """Everything but the graphs and the manifest: tokenizer, HF config, files for other tools, card."""
    runtime_tokenizer.save(str(staging / TOKENIZER_FILE))
    hf_model.config.to_json_file(str(staging / CONFIG_FILE))
    hidden = int(hf_model.config.hidden_size)
    tokenizer_json = json.loads((staging / TOKENIZER_FILE).read_text(encoding="utf-8"))
    write_consumer_files(
        staging, consumer_files(tokenizer_json, special_tokens(tokenizer), hidden, max_length)
    )
    (staging / CARD_FILE).write_text(card_text(model_id, hidden), encoding="utf-8")


def _same_model(existing: Path, staging: Path) -> bool:
    """Whether an existing export holds the same model: equal HF config (versions aside) and tokenizer."""

    def config(directory: Path) -> dict[str, Any] | None:
        try:
            data = json.loads((directory / CONFIG_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return {k: v for k, v in data.items() if k not in ("transformers_version", "_name_or_path")}

    try:
        same_tokenizer = (existing / TOKENIZER_FILE).read_bytes() == (staging / TOKENIZER_FILE).read_bytes()
    except OSError:
        return False
    earlier = config(existing)
    return same_tokenizer and earlier is not None and earlier == config(staging)


def _replace_dir(staging: Path, output_dir: Path) -> None:
    """Move a finished export into place, replacing an earlier export (never another kind of folder)."""
    if output_dir.exists():
        old = output_dir.with_name(output_dir.name + f".old-{int(time.time())}")
        output_dir.rename(old)
        staging.rename(output_dir)
        shutil.rmtree(old, ignore_errors=True)
    else:
        output_dir.parent.mkdir(parents=True, exist_ok=True)
        staging.rename(output_dir)


def _add_graphs(staging: Path, output_dir: Path, new: Manifest, existing: Manifest) -> None:
    """Move the new graphs and shared files into an export of the same model; the manifest, written
    last and atomically, lists the earlier graphs beside the new ones (a new one replaces its twin)."""
    for path in sorted(staging.rglob("*")):
        if path.is_file() and path.name != MANIFEST_FILE:
            target = output_dir / path.relative_to(staging)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(path, target)
    merged = Manifest(**{**vars(new), "path": output_dir / MANIFEST_FILE, "raw": existing.raw})
    merged.graphs = merge_graphs(existing.graphs, new.graphs)
    merged.document_graphs, stale = merge_document_graphs(
        existing.document_graphs, new.document_graphs, {g.file for g in new.graphs}
    )
    for relative in stale:  # their weights pointed into an encoder file just replaced
        (output_dir / relative).unlink(missing_ok=True)
    for graph in merged.graphs:
        graph.model_dir = output_dir
    write_manifest(merged)
    shutil.rmtree(staging, ignore_errors=True)


def check_output_dir(output_dir: Path) -> None:
    """Refuse, before any work, an output that is a file or a non-empty folder that is no export."""
    if output_dir.exists() and not output_dir.is_dir():
        raise FileExistsError(f"{output_dir} exists and is not a directory")
    if output_dir.is_dir() and any(output_dir.iterdir()) and not (output_dir / MANIFEST_FILE).exists():
        raise FileExistsError(f"{output_dir} is a non-empty directory that is not a longformer2vec export")


def install(staging: Path, output_dir: Path, manifest: Manifest, progress) -> None:
    """Publish a finished staging directory at ``output_dir``: added to an export of the same model
    there, else replacing whatever export was there (an older format, another model)."""
    check_output_dir(output_dir)
    write_manifest(manifest)
    existing = None
    if (output_dir / MANIFEST_FILE).is_file():
        try:
            existing = read_manifest(output_dir)
        except ModelLoadError:
            existing = None
    if (
        existing is not None
        and existing.format_version == manifest.format_version
        and _same_model(output_dir, staging)
    ):
        progress(f"adding {', '.join(g.name for g in manifest.graphs)} to {output_dir}")
        _add_graphs(staging, output_dir, manifest, existing)
        return
    if existing is not None or (output_dir / MANIFEST_FILE).exists():
        progress(f"replacing the earlier export in {output_dir} (another model or format)")
    _replace_dir(staging, output_dir)
    for graph in manifest.graphs:
        graph.model_dir = output_dir
