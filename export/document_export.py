"""Write and verify the document graphs of an export (``--document-graph``).

Each plain encoder graph of the export (fp32, int8, fp16; not the ``fused`` ones, which run on CUDA
only, nor those that take global tokens) gets a document graph (:mod:`.document`) beside it. Before it
is listed, the graph is run on texts of 1x, 2.5x and 10x ``max_length`` tokens and compared with the
runtime's own vector of each text (``Longformer2Vec(DIR, precision=p).encode``, the windows computed
outside the graph); a graph that differs by more than :data:`DOCUMENT_MAX_ABS` is refused.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ..contract import (
    ATTENTION_MASK,
    DOCUMENT_EMBEDDING,
    DOCUMENT_KIND,
    INPUT_IDS,
    Manifest,
    document_graph_file,
    sha256_file,
)
from ..document_graph import format_document_table
from ..errors import ParityError
from .directory import write_manifest
from .length_switch import all_nodes
from .verify import VERIFICATION_TEXT

# The document graph's vector against the runtime's, per component. fp16 values step by about 1e-3 near 1:
# ONNX Runtime's CPU optimizer at its default (ALL) level rewrites a graph's top level and a Loop body a
# little differently, which moves an fp16 result by one such step (at the EXTENDED level they are equal).
DOCUMENT_MAX_ABS = {"fp32": 1e-5, "int8": 1e-5, "fp16": 2e-3}
DOCUMENT_LENGTHS = (1.0, 2.5, 10.0)  # verification texts, in multiples of max_length tokens


def text_of_tokens(backend, n_tokens: int, source: str = VERIFICATION_TEXT) -> str:
    """A prefix of ``source`` repeated that tokenizes to ``n_tokens`` ids (specials included), or as
    near as a cut at a token boundary gets."""
    unit_tokens = max(1, len(backend.encode(source, add_special_tokens=False).ids))
    long = source * (n_tokens // unit_tokens + 2)
    encoding = backend.encode(long, add_special_tokens=False)
    frame = len(backend.encode("").ids)
    keep = max(0, n_tokens - frame)
    text = ""
    for _ in range(8):
        text = long[: encoding.offsets[keep - 1][1]] if keep > 0 else ""
        got = len(backend.encode(text).ids)
        if got == n_tokens:
            break
        keep = max(0, keep + n_tokens - got)
    return text


def windows_of(n: int, max_length: int, window: int, stride: int) -> int:
    """Rows the runtime makes of an ``n``-token input (1 up to ``max_length``)."""
    content = n - (max_length - window)
    return 1 + math.ceil(max(0, content - window) / stride)


def _session(path: Path):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3  # the optional attention_mask is an overridable initializer: ORT warns
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def check_document_graph(
    staging: Path, manifest: Manifest, precision: str, path: Path, backend, window: int, stride: int
) -> list[dict[str, Any]]:
    """The document graph's vector against ``Longformer2Vec(staging, precision).encode`` on the
    verification texts; raises :class:`ParityError` naming the lengths that differ."""
    from ..encoder import Longformer2Vec

    write_manifest(manifest)  # the runtime reads the staging directory as the export will be
    runtime = Longformer2Vec(str(staging), precision=precision, providers=["CPUExecutionProvider"])
    session = _session(path)
    rows = []
    for multiple in DOCUMENT_LENGTHS:
        text = text_of_tokens(backend, int(multiple * manifest.max_length))
        ids = np.asarray([backend.encode(text).ids], dtype=np.int64)
        start = time.perf_counter()
        reference = np.asarray(runtime.encode(text), dtype=np.float32)
        seconds_runtime = time.perf_counter() - start
        start = time.perf_counter()
        got = session.run([DOCUMENT_EMBEDDING], {INPUT_IDS: ids})[0][0]
        seconds_graph = time.perf_counter() - start
        with_mask = session.run([DOCUMENT_EMBEDDING], {INPUT_IDS: ids, ATTENTION_MASK: np.ones_like(ids)})[0][
            0
        ]
        cosine = float(np.dot(got, reference) / max(np.linalg.norm(got) * np.linalg.norm(reference), 1e-30))
        rows.append(
            {
                "tokens": int(ids.shape[1]),
                "windows": windows_of(int(ids.shape[1]), manifest.max_length, window, stride),
                "max_abs": float(np.abs(got - reference).max()),
                "max_abs_with_mask": float(np.abs(with_mask - reference).max()),
                "cosine": cosine,
                "seconds_runtime": seconds_runtime,
                "seconds_graph": seconds_graph,
            }
        )
    limit = DOCUMENT_MAX_ABS[precision]
    failing = [r for r in rows if not max(r["max_abs"], r["max_abs_with_mask"]) <= limit]
    if failing:
        cases = ", ".join(
            f"{r['tokens']} tokens (max |d| {max(r['max_abs'], r['max_abs_with_mask']):.1e})" for r in failing
        )
        raise ParityError(
            f"{precision} document graph differs from the runtime's windowed vector by more than "
            f"{limit}: {cases}"
        )
    return rows


def add_document_graphs(staging: Path, manifest: Manifest, backend, progress: Callable[[str], None]) -> None:
    """Build, verify and list (in ``manifest.document_graphs``) a document graph per plain graph."""
    from .document import build_document_graph
    from .pipeline import special_token_frame

    head, tail = (len(ids) for ids in special_token_frame(backend))
    window = manifest.max_length - head - tail
    stride = window - min(max(manifest.chunk_overlap, 0), window - 1)
    entries = []
    for graph in manifest.graphs:
        if graph.global_tokens or graph.layout == "fused":
            continue
        path = staging / document_graph_file(graph.precision)
        progress(
            f"building the {graph.precision} document graph ({path.name}, weights read from {graph.file})"
        )
        model = build_document_graph(
            graph.path,
            path,
            max_length=manifest.max_length,
            chunk_overlap=manifest.chunk_overlap,
            pad_token_id=manifest.pad_token_id,
            pad_multiple=graph.pad_multiple,
            head=head,
            tail=tail,
        )
        rows = check_document_graph(staging, manifest, graph.precision, path, backend, window, stride)
        progress(format_document_table(rows, graph.precision))
        entries.append(
            {
                "kind": DOCUMENT_KIND,
                "file": path.relative_to(staging).as_posix(),
                "precision": graph.precision,
                "sha256": sha256_file(path),
                "inputs": [INPUT_IDS, ATTENTION_MASK],
                "optional_inputs": [ATTENTION_MASK],
                "outputs": [DOCUMENT_EMBEDDING],
                "encoder_file": graph.file,
                "encoder_sha256": graph.sha256,
                "weights_file": graph.file,
                "size_bytes": path.stat().st_size,
                "node_count": sum(1 for _ in all_nodes(model.graph)),
                "specials": [head, tail],
                "window": window,
                "stride": stride,
                "parity": rows,
                "parity_thresholds": {"max_abs": DOCUMENT_MAX_ABS[graph.precision]},
                "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            }
        )
    manifest.document_graphs = entries
