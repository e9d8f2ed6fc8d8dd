"""Model directory contract: `manifest.json` describes the graph, tokenizer and card the exporter wrote."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ModelLoadError

MANIFEST_FILE = "manifest.json"
FORMAT_VERSION = 1
REQUIRED_KEYS = ("format_version", "model_id", "precision", "graph_file", "max_length", "vector_length")
_CHUNK = 1 << 20


@dataclass
class Manifest:
    """Typed view of `manifest.json`; unknown keys are kept in `raw` for forward compatibility."""

    path: Path
    format_version: int
    model_id: str
    precision: str
    graph_file: str
    max_length: int
    vector_length: int
    graph_sha256: str | None = None
    opset: int | None = None
    node_count: int | None = None
    inputs: list[str] = field(
        default_factory=lambda: ["input_ids", "attention_mask", "global_attention_mask"]
    )
    outputs: list[str] = field(default_factory=lambda: ["last_hidden_state", "sentence_embedding"])
    attention_windows: list[int] = field(default_factory=list)
    layout: str = ""  # "cpu", "gpu" or "fused" (CUDA only); empty in exports that predate layouts
    pad_multiple: int = 1
    pooling: str = "mean"
    pad_token_id: int = 1
    tokenizer_file: str = "tokenizer.json"
    card_file: str = "card.md"
    parity: dict[str, Any] = field(default_factory=dict)
    versions: dict[str, Any] = field(default_factory=dict)
    created: str = ""
    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def model_dir(self) -> Path:
        return self.path.parent

    @property
    def accepts_global_tokens(self) -> bool:
        """Whether the graph takes ``global_attention_mask``: exports with ``global_tokens=False`` (what the
        runtime exports for ``global_attention="none"``) leave global attention out and take only
        ``input_ids`` and ``attention_mask``."""
        return "global_attention_mask" in self.inputs

    @property
    def graph_path(self) -> Path:
        return self.model_dir / self.graph_file

    @property
    def tokenizer_path(self) -> Path:
        return self.model_dir / self.tokenizer_file

    @property
    def card_path(self) -> Path:
        return self.model_dir / self.card_file


def sha256_file(path: str | Path) -> str:
    """Hash in chunks so multi-hundred-MB graphs are not read into memory at once."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(_CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def is_model_dir(path: str | Path) -> bool:
    """True when `path` looks like an exported model directory (has a manifest)."""
    return (Path(path) / MANIFEST_FILE).is_file()


def load_model_dir(path: str | Path, verify_hash: bool = True) -> Manifest:
    """Validate an exported directory and return its manifest; every failure names the offending path."""
    model_dir = Path(path).expanduser()
    if not model_dir.is_dir():
        raise ModelLoadError(f"Model directory not found: {model_dir}")
    manifest_path = model_dir / MANIFEST_FILE
    if not manifest_path.is_file():
        raise ModelLoadError(
            f"{manifest_path} is missing; {model_dir} is not an exported longformer2vec model"
        )
    try:
        data = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelLoadError(f"Cannot parse {manifest_path}: {exc}") from exc
    if not isinstance(data, dict):
        raise ModelLoadError(f"{manifest_path} must contain a JSON object")
    missing = [k for k in REQUIRED_KEYS if k not in data]
    if missing:
        raise ModelLoadError(f"{manifest_path} lacks required keys: {', '.join(missing)}")
    if data["format_version"] != FORMAT_VERSION:
        raise ModelLoadError(
            f"{manifest_path} has format_version {data['format_version']!r}; this runtime reads {FORMAT_VERSION}"
        )
    known = set(Manifest.__dataclass_fields__) - {"path", "raw"}
    try:
        manifest = Manifest(path=manifest_path, raw=data, **{k: v for k, v in data.items() if k in known})
        manifest.max_length = int(manifest.max_length)
        manifest.vector_length = int(manifest.vector_length)
        manifest.pad_multiple = max(1, int(manifest.pad_multiple or 1))
        manifest.pad_token_id = int(manifest.pad_token_id)
    except (TypeError, ValueError) as exc:
        raise ModelLoadError(f"{manifest_path} has an invalid value: {exc}") from exc
    if manifest.max_length < 2 or manifest.vector_length < 1:
        raise ModelLoadError(f"{manifest_path}: max_length and vector_length must be positive")
    for label, file in (("graph", manifest.graph_path), ("tokenizer", manifest.tokenizer_path)):
        if not file.is_file():
            raise ModelLoadError(f"{label} file {file} listed in {manifest_path} does not exist")
    if verify_hash:
        if not manifest.graph_sha256:
            raise ModelLoadError(
                f"{manifest_path} has no graph_sha256; pass verify_hash=False to skip the check"
            )
        actual = sha256_file(manifest.graph_path)
        if actual.lower() != str(manifest.graph_sha256).lower():
            raise ModelLoadError(
                f"sha256 mismatch for {manifest.graph_path}: manifest says {manifest.graph_sha256}, "
                f"file is {actual} (corrupt or partially written; re-export the model)"
            )
    return manifest


def format_parity_table(rows: list[dict[str, Any]], label: str) -> str:
    """Fixed-width table of parity figures (one row per case), as the exporter prints and stores them."""
    lines = [
        f"parity {label} vs PyTorch eager fp32",
        (
            f"{'case':<22}{'lengths':<24}{'global':<8}{'tok max|d|':>12}{'tok min cos':>13}"
            f"{'pool max|d|':>13}{'pool cos':>11}{'torch s':>9}{'onnx s':>8}"
        ),
    ]
    for r in rows:
        lengths = ",".join(map(str, r["lengths"]))
        lines.append(
            f"{r['case']:<22}{lengths:<24}{'cls' if r['global_first_token'] else '-':<8}"
            f"{r['token_max_abs']:>12.2e}{r['token_min_cosine']:>13.6f}{r['pooled_max_abs']:>13.2e}"
            f"{r['pooled_min_cosine']:>11.6f}{r['seconds_torch']:>9.2f}{r['seconds_onnx']:>8.2f}"
        )
    return "\n".join(lines)
