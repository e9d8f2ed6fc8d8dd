"""The document graphs of a directory (``export --document-graph``): what the manifest says of each, and
the checks that make one safe to run.

A document graph (``onnx/model_document*.onnx``) takes ``input_ids`` ``[1, n]`` of any length (the ids
``tokenizer.json`` gives, specials included; ``attention_mask`` optional) and returns
``document_embedding`` ``[1, hidden]``: the runtime's vector of the text, long-text windows included
(README, "Long texts"). Its weights are the bytes of its encoder graph's file (ONNX external data), so it
is only valid beside the very encoder file it was built from: :func:`verify_document_graph` checks both.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .contract import DOCUMENT_KIND, Manifest, sha256_file
from .errors import ModelLoadError


@dataclass
class DocumentGraph:
    """One entry of the manifest's ``document_graphs``."""

    file: str
    precision: str
    sha256: str
    encoder_file: str
    encoder_sha256: str
    weights_file: str | None  # the file its external data points into (its encoder's); None: embedded
    inputs: list[str]
    outputs: list[str]
    model_dir: Path
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def path(self) -> Path:
        return self.model_dir / self.file

    @classmethod
    def from_json(cls, data: dict[str, Any], model_dir: Path) -> DocumentGraph:
        try:
            return cls(
                file=str(data["file"]),
                precision=str(data["precision"]),
                sha256=str(data["sha256"]),
                encoder_file=str(data["encoder_file"]),
                encoder_sha256=str(data["encoder_sha256"]),
                weights_file=data.get("weights_file"),
                inputs=list(data.get("inputs") or []),
                outputs=list(data.get("outputs") or []),
                model_dir=model_dir,
                raw=dict(data),
            )
        except (KeyError, TypeError) as exc:
            raise ModelLoadError(f"invalid document graph entry {data!r}: {exc!r}") from exc


def document_graphs(manifest: Manifest) -> list[DocumentGraph]:
    """The document graphs a manifest lists (none in directories exported without them)."""
    return [
        DocumentGraph.from_json(entry, manifest.model_dir)
        for entry in manifest.document_graphs
        if entry.get("kind", DOCUMENT_KIND) == DOCUMENT_KIND
    ]


def find_document_graph(manifest: Manifest, precision: str) -> DocumentGraph | None:
    return next((g for g in document_graphs(manifest) if g.precision == precision), None)


def verify_document_graph(graph: DocumentGraph, manifest: Manifest) -> None:
    """Refuse a document graph whose file, or the encoder file it reads its weights from, is missing or
    differs from what it was built and checked with."""
    encoder = next((g for g in manifest.graphs if g.file == graph.encoder_file), None)
    if encoder is None or str(encoder.sha256).lower() != graph.encoder_sha256.lower():
        raise ModelLoadError(
            f"{graph.path} was built from {graph.encoder_file} with sha256 {graph.encoder_sha256}, which "
            f"{manifest.path} no longer lists; export again with --document-graph"
        )
    checks = [(graph.path, graph.sha256)]
    if graph.weights_file is not None:
        checks.append((manifest.model_dir / graph.weights_file, graph.encoder_sha256))
    for path, expected in checks:
        if not path.is_file():
            raise ModelLoadError(f"{path}, listed in {manifest.path} for {graph.file}, does not exist")
        actual = sha256_file(path)
        if actual.lower() != expected.lower():
            raise ModelLoadError(
                f"sha256 mismatch for {path}: manifest says {expected}, file is {actual} (re-export the model)"
            )


def merge_document_graphs(
    existing: list[dict[str, Any]], new: list[dict[str, Any]], new_encoder_files: set[str]
) -> tuple[list[dict[str, Any]], list[str]]:
    """The document graph entries after an export adds graphs to a directory, and the files of the
    earlier ones that no longer hold: a new entry replaces the one of its precision, and an earlier one
    whose encoder file was rewritten (its weights point into that file) is dropped."""
    replaced = {entry["precision"] for entry in new}
    kept, stale = [], []
    for entry in existing:
        if entry.get("precision") in replaced:
            continue
        if entry.get("encoder_file") in new_encoder_files:
            stale.append(str(entry["file"]))
            continue
        kept.append(entry)
    return kept + list(new), stale


def format_document_table(rows: list[dict[str, Any]], label: str) -> str:
    """A document graph's export check, one line per verification text."""
    lines = [
        f"document graph {label} vs the runtime's windowed vector",
        f"{'tokens':>8}{'windows':>9}{'max|d|':>11}{'cosine':>11}{'runtime s':>11}{'graph s':>9}",
    ]
    lines += [
        f"{r['tokens']:>8}{r['windows']:>9}{r['max_abs']:>11.2e}{r['cosine']:>11.7f}"
        f"{r['seconds_runtime']:>11.2f}{r['seconds_graph']:>9.2f}"
        for r in rows
    ]
    return "\n".join(lines)


def document_summary(manifest: Manifest) -> list[str]:
    """``longformer2vec info`` lines: one per document graph."""
    return [
        f"  {g.file}: document graph, {g.precision}; inputs {', '.join(g.inputs)} (attention_mask "
        f"optional); outputs {', '.join(g.outputs)}; weights read from {g.weights_file or 'itself'}; "
        f"{g.raw.get('size_bytes', '?')} bytes; sha256 {g.sha256}"
        for g in document_graphs(manifest)
    ]


def document_tables(manifest: Manifest) -> list[str]:
    """``longformer2vec info`` tables: each document graph's export check."""
    return [format_document_table(g.raw.get("parity") or [], g.file) for g in document_graphs(manifest)]
