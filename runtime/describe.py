"""What `longformer2vec info` (and `export`, when it finishes) prints about a model directory: the
summary of the manifest and its graphs, then the exporter's figures, each table titled with the graph
it measures."""

from __future__ import annotations

import json

from .contract import GraphEntry, Manifest
from .document_graph import document_summary, document_tables
from .tables import format_parity_table, format_ranking_table


def graph_summary(graph: GraphEntry) -> str:
    quantization = graph.quantization or {}
    recipe = f", recipe {quantization['name']}" if quantization.get("name") else ""
    width = graph.batch_independent_width
    if graph.precision == "int8":  # how far its rows may share a call without moving each other
        rows = {0: "rows one per call", None: "rows batch at any width"}.get(
            width, f"rows batch up to {width} tokens"
        )
        recipe += f", {rows}"
    inputs = ", ".join(graph.inputs)
    return (
        f"  {graph.file}: {graph.name}{recipe}; layout {graph.layout or 'unrecorded'}, pad multiple "
        f"{graph.pad_multiple}, opset {graph.opset}, {graph.node_count} nodes; inputs {inputs}; "
        f"sha256 {graph.sha256}; created {graph.created}"
    )


def summary(manifest: Manifest) -> str:
    windows = sorted(set(manifest.attention_windows))
    lines = [
        f"model_id:       {manifest.model_id}",
        f"directory:      {manifest.model_dir}",
        f"format:         {manifest.format_version}",
        f"vector_length:  {manifest.vector_length}",
        f"max_length:     {manifest.max_length}",
        f"attention:      {len(manifest.attention_windows)} layers, windows {windows}",
        f"pooling:        {manifest.pooling}",
        f"chunk_overlap:  {manifest.chunk_overlap}",
        f"graphs:         {manifest.graph_summary()}",
        *(graph_summary(graph) for graph in manifest.graphs),
        *document_summary(manifest),
    ]
    versions = manifest.graphs[0].versions if manifest.graphs else {}
    if versions:
        lines.append("versions:       " + ", ".join(f"{k}={v}" for k, v in versions.items()))
    return "\n".join(lines)


def measured(graph: GraphEntry, label: str) -> str:
    """What a recorded table measures, said in its title: the graph itself, the fp32 trace an int8 or
    fp16 graph was converted from, or an int8 recipe the exporter tried and refused."""
    if label.split()[0] != graph.precision:
        return f"the fp32 source of {graph.file} ({label}), not {graph.file} itself"
    kept = (graph.quantization or {}).get("name")
    if graph.precision == "int8" and kept and kept not in label.split():
        return f"a refused candidate for {graph.file} ({label}), not the graph kept"
    return f"{graph.file} ({label})"


def parity_tables(manifest: Manifest) -> str:
    """The exporter's figures per graph: parity (its fp32 trace, then the graph), then for int8 and fp16
    graphs the ranking figures; each title says which graph the table measures."""
    tables = []
    for graph in manifest.graphs:
        for label, rows in (graph.parity or {}).items():
            title = measured(graph, label)
            tables.append(
                format_parity_table(rows, title) if isinstance(rows, list) else f"{title}: {json.dumps(rows)}"
            )
        for label, rows in (graph.ranking or {}).items():
            tables.append(format_ranking_table(rows, measured(graph, label)))
    tables += document_tables(manifest)
    return "\n\n".join(tables) or "parity: (none recorded)"
