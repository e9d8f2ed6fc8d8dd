"""The exported model directory: which files it holds, what `manifest.json` says, what each graph takes.

This module is the one place that defines the directory: its file names, the manifest and what each
graph takes, and the reader (:func:`load_model_dir`). The exporter writes it with these names
(:mod:`longformer2vec.export.directory`, :mod:`longformer2vec.export.consumer_files`). It imports
neither torch nor transformers.

A directory (``format_version`` 2) follows the layout the ONNX embedding repositories on the Hugging Face
hub use, so sentence-transformers, optimum, fastembed and transformers.js load it as it is::

    manifest.json               this runtime's description: model geometry and every graph (below)
    config.json                 the exported model's Hugging Face config
    tokenizer.json              Hugging Face tokenizers file: no padding or truncation; its post-processor
                                adds the special tokens (``<s> ... </s>``)
    tokenizer_config.json       tokenizer class, special tokens, ``model_max_length`` = the graph's
                                longest input (:func:`longformer2vec.export.consumer_files.tokenizer_config`)
    special_tokens_map.json
    modules.json, sentence_bert_config.json, 1_Pooling/config.json
                                sentence-transformers: the model, then mean pooling (:func:`longformer2vec.export.consumer_files.sentence_transformers_files`)
    card.md                     VectorHub model card
    onnx/model.onnx             fp32 graph         onnx/model_global.onnx        fp32, takes global tokens
    onnx/model_int8.onnx        int8 graph         onnx/model_global_int8.onnx   int8, takes global tokens
    onnx/model_fp16.onnx        fp16 graph         onnx/model_global_fp16.onnx   fp16, takes global tokens

A directory holds any subset of the graphs (:func:`graph_file` names them; transformers.js finds the
plain ones by its ``dtype`` option). Every graph takes ``input_ids`` and ``attention_mask`` (int64,
``[batch, sequence]``, any length up to ``max_length``); the ``model_global*`` graphs also take
``global_attention_mask``. Every graph returns ``last_hidden_state`` (float32 ``[batch, sequence,
hidden]``) and ``sentence_embedding`` (float32 ``[batch, hidden]``: the mean over positions whose
attention mask is 1, VectorHub's vector).

Directories of format 1 (one graph, ``model.onnx`` beside the manifest) are still read.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from .errors import ModelLoadError

FORMAT_VERSION = 2
DEFAULT_MODEL = "allenai/longformer-base-4096"  # the hub id exported and loaded when none is named
READABLE_FORMAT_VERSIONS = (1, 2)

MANIFEST_FILE = "manifest.json"
TOKENIZER_FILE = "tokenizer.json"
CARD_FILE = "card.md"
CONFIG_FILE = "config.json"
TOKENIZER_CONFIG_FILE = "tokenizer_config.json"
SPECIAL_TOKENS_MAP_FILE = "special_tokens_map.json"
SENTENCE_TRANSFORMERS_MODULES_FILE = "modules.json"
SENTENCE_TRANSFORMERS_CONFIG_FILE = "sentence_bert_config.json"
POOLING_CONFIG_FILE = "1_Pooling/config.json"
GRAPH_DIR = "onnx"

PRECISIONS = ("fp32", "int8", "fp16")
LAYOUTS = ("cpu", "gpu", "fused")  # graph layouts the exporter writes (export.model.LongformerForExport)
POOLINGS = ("mean", "cls")

INPUT_IDS = "input_ids"
ATTENTION_MASK = "attention_mask"
GLOBAL_ATTENTION_MASK = "global_attention_mask"
LAST_HIDDEN_STATE = "last_hidden_state"
SENTENCE_EMBEDDING = "sentence_embedding"
GRAPH_OUTPUTS = (LAST_HIDDEN_STATE, SENTENCE_EMBEDDING)

# Document graphs (`export --document-graph`, :mod:`longformer2vec.document_graph`): ``input_ids`` ``[1, n]``
# of any length (``attention_mask`` optional) in, ``document_embedding`` ``[1, hidden]`` out, the long-text
# windows inside the graph. Listed under the manifest's ``document_graphs`` key, apart from ``graphs``, so
# that readers that know only encoder graphs never pick one.
DOCUMENT_EMBEDDING = "document_embedding"
DOCUMENT_KIND = "document"
DOCUMENT_GRAPHS_KEY = "document_graphs"

# Tokens shared by consecutive windows of a text longer than the model (docs/python.md, "Long texts"): 256, or a
# quarter of a window for models too short for that (a 128-token model would otherwise advance its
# windows one token at a time). Exports record it as the manifest's `chunk_overlap`.
DEFAULT_CHUNK_OVERLAP = 256


def default_chunk_overlap(max_length: int) -> int:
    return max(0, min(DEFAULT_CHUNK_OVERLAP, (int(max_length) - 2) // 4))


_HASH_CHUNK = 1 << 20


def graph_inputs(global_tokens: bool) -> tuple[str, ...]:
    """Input names of a graph, in order: global tokens add ``global_attention_mask``."""
    return (
        (INPUT_IDS, ATTENTION_MASK, GLOBAL_ATTENTION_MASK) if global_tokens else (INPUT_IDS, ATTENTION_MASK)
    )


def graph_file(precision: str, global_tokens: bool = False) -> str:
    """Relative path of a graph: ``onnx/model.onnx`` (fp32), ``onnx/model_int8.onnx``,
    ``onnx/model_global_fp16.onnx``... (the suffixes transformers.js' ``dtype`` option looks for)."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    stem = "model_global" if global_tokens else "model"
    return f"{GRAPH_DIR}/{stem}{'' if precision == 'fp32' else '_' + precision}.onnx"


def document_graph_file(precision: str) -> str:
    """Relative path of a document graph: ``onnx/model_document.onnx`` (fp32), ``onnx/model_document_int8.onnx``..."""
    return graph_file(precision).replace("/model", "/model_document", 1)


def sha256_file(path: str | Path) -> str:
    """Hash in chunks so multi-hundred-MB graphs are not read into memory at once."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(_HASH_CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


# How an int8 graph scales its activations (``export --int8-activations``): per token on inputs up to a
# width and per call above (``by-length``), once per call, or per token at every width.
INT8_ACTIVATIONS = ("by-length", "per-tensor", "per-token")


@dataclass
class GraphEntry:
    """One graph of a directory, as its manifest lists it."""

    file: str
    precision: str
    global_tokens: bool
    sha256: str | None = None
    inputs: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=lambda: list(GRAPH_OUTPUTS))
    layout: str = ""  # "cpu", "gpu" or "fused" (CUDA only); empty in exports that predate layouts
    pad_multiple: int = 1
    opset: int | None = None
    node_count: int | None = None
    quantization: dict[str, Any] | None = None
    parity: dict[str, Any] = field(default_factory=dict)
    parity_thresholds: dict[str, Any] = field(default_factory=dict)
    ranking: dict[str, Any] | None = None
    versions: dict[str, Any] = field(default_factory=dict)
    created: str = ""
    model_dir: Path = field(default=Path("."), repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.inputs:
            self.inputs = list(graph_inputs(self.global_tokens))

    @property
    def path(self) -> Path:
        return self.model_dir / self.file

    @property
    def batch_independent_width(self) -> int | None:
        """The widest call (padded tokens) in which rows leave each other's vectors alone: None for any
        width (fp32, fp16, int8 scaled per token), 0 for none (int8 scaled once per call: one row per
        call), else the manifest's ``batch_independent_width`` (``by-length`` int8)."""
        if self.precision != "int8":
            return None
        quantization = self.quantization or {}
        if not quantization.get("batch_independent", False):
            return 0
        return quantization.get("batch_independent_width")

    @property
    def name(self) -> str:
        """How errors and logs name the graph: ``int8`` or ``int8, global tokens``."""
        return self.precision + (", global tokens" if self.global_tokens else "")

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        del data["model_dir"]
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any], model_dir: Path) -> GraphEntry:
        known = {f.name for f in fields(cls)} - {"model_dir"}
        entry = cls(**{k: v for k, v in data.items() if k in known}, model_dir=model_dir)
        entry.pad_multiple = max(1, int(entry.pad_multiple or 1))
        entry.global_tokens = bool(entry.global_tokens)
        return entry


@dataclass
class Manifest:
    """Typed view of `manifest.json`; unknown keys are kept in `raw` for forward compatibility."""

    path: Path
    format_version: int
    model_id: str
    max_length: int
    vector_length: int
    graphs: list[GraphEntry]
    pad_token_id: int = 1
    pooling: str = "mean"
    chunk_overlap: int = DEFAULT_CHUNK_OVERLAP
    attention_windows: list[int] = field(default_factory=list)
    document_graphs: list[dict[str, Any]] = field(default_factory=list)  # DOCUMENT_GRAPHS_KEY entries
    tokenizer_file: str = TOKENIZER_FILE
    card_file: str = CARD_FILE
    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def model_dir(self) -> Path:
        return self.path.parent

    @property
    def tokenizer_path(self) -> Path:
        return self.model_dir / self.tokenizer_file

    @property
    def card_path(self) -> Path:
        return self.model_dir / self.card_file

    @property
    def accepts_global_tokens(self) -> bool:
        """Whether any graph of the directory takes ``global_attention_mask``."""
        return any(g.global_tokens for g in self.graphs)

    def find(self, precision: str, global_tokens: bool) -> GraphEntry | None:
        return next(
            (g for g in self.graphs if (g.precision, g.global_tokens) == (precision, global_tokens)), None
        )

    def graph_summary(self) -> str:
        """``fp32, int8, int8 (global tokens)``: what the directory holds, for errors."""
        return ", ".join(g.name for g in self.graphs) or "no graph"

    def to_json(self) -> dict[str, Any]:
        """The manifest as written (format 2), keeping keys this version does not know."""
        known = {f.name for f in fields(self)} - {"path", "raw"}
        data = {k: v for k, v in self.raw.items() if k not in known and k not in _FORMAT1_GRAPH_KEYS}
        data.update({k: getattr(self, k) for k in known if k != "graphs"})
        data["format_version"] = FORMAT_VERSION
        data["graphs"] = [g.to_json() for g in self.graphs]
        return data


# format 1 kept one graph's fields at the top level
_FORMAT1_GRAPH_KEYS = {
    "precision", "graph_file", "graph_sha256", "inputs", "outputs", "layout", "pad_multiple", "opset",
    "node_count", "quantization", "parity", "parity_thresholds", "versions", "created",
}  # fmt: skip
REQUIRED_KEYS = ("format_version", "model_id", "max_length", "vector_length")


def _format1_graph(data: Mapping[str, Any], model_dir: Path) -> GraphEntry:
    inputs = list(data.get("inputs") or graph_inputs(True))
    entry = {k: v for k, v in data.items() if k in _FORMAT1_GRAPH_KEYS}
    entry.update(file=data["graph_file"], sha256=data.get("graph_sha256"), inputs=inputs)
    entry["global_tokens"] = GLOBAL_ATTENTION_MASK in inputs
    return GraphEntry.from_json(entry, model_dir)


def is_model_dir(path: str | Path) -> bool:
    """True when `path` looks like an exported model directory (has a manifest)."""
    return (Path(path) / MANIFEST_FILE).is_file()


def read_manifest(path: str | Path) -> Manifest:
    """Parse and check `manifest.json` of a directory; every failure names the offending path."""
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
    version = data.get("format_version")
    if "format_version" in data and version not in READABLE_FORMAT_VERSIONS:
        raise ModelLoadError(
            f"{manifest_path} has format_version {version!r}; this runtime reads "
            f"{', '.join(map(str, READABLE_FORMAT_VERSIONS))}: upgrade longformer2vec or export the model again"
        )
    required = (*REQUIRED_KEYS, "graphs" if version == FORMAT_VERSION else "graph_file")
    missing = [k for k in required if k not in data]
    if missing:
        raise ModelLoadError(f"{manifest_path} lacks required keys: {', '.join(missing)}")
    known = {f.name for f in fields(Manifest)} - {"path", "raw", "graphs", "format_version"}
    try:
        if version == 1:
            graphs = [_format1_graph(data, model_dir)]
        else:
            graphs = [GraphEntry.from_json(g, model_dir) for g in data["graphs"]]
        manifest = Manifest(
            path=manifest_path,
            format_version=version,
            graphs=graphs,
            raw=data,
            **{k: v for k, v in data.items() if k in known},
        )
        manifest.max_length = int(manifest.max_length)
        manifest.vector_length = int(manifest.vector_length)
        manifest.pad_token_id = int(manifest.pad_token_id)
        manifest.chunk_overlap = int(manifest.chunk_overlap)
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        raise ModelLoadError(f"{manifest_path} has an invalid value: {exc!r}") from exc
    if manifest.max_length < 2 or manifest.vector_length < 1:
        raise ModelLoadError(f"{manifest_path}: max_length and vector_length must be positive")
    if not graphs:
        raise ModelLoadError(f"{manifest_path} lists no graph")
    return manifest


def verify_graph(entry: GraphEntry, manifest_path: Path) -> None:
    """Refuse a graph file that is missing or whose sha256 differs from the manifest's."""
    if not entry.path.is_file():
        raise ModelLoadError(f"graph file {entry.path} listed in {manifest_path} does not exist")
    if not entry.sha256:
        raise ModelLoadError(
            f"{manifest_path} has no sha256 for {entry.file}, so the graph cannot be checked; "
            "export the model again"
        )
    actual = sha256_file(entry.path)
    if actual.lower() != str(entry.sha256).lower():
        raise ModelLoadError(
            f"sha256 mismatch for {entry.path}: manifest says {entry.sha256}, file is {actual} "
            "(corrupt or partially written; re-export the model)"
        )


def load_model_dir(path: str | Path, verify_hash: bool = True) -> Manifest:
    """Read a directory's manifest and check its tokenizer and graphs exist; with ``verify_hash``, also
    every graph's sha256 (the runtime checks only the graph it loads: :func:`verify_graph`)."""
    manifest = read_manifest(path)
    if not manifest.tokenizer_path.is_file():
        raise ModelLoadError(
            f"tokenizer file {manifest.tokenizer_path} listed in {manifest.path} does not exist"
        )
    for entry in manifest.graphs:
        if verify_hash:
            verify_graph(entry, manifest.path)
        elif not entry.path.is_file():
            raise ModelLoadError(f"graph file {entry.path} listed in {manifest.path} does not exist")
    return manifest
