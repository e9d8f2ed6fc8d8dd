"""The document graph (windows inside one ONNX Loop) against the runtime's windowing (windows cut in
Python, one ONNX call each), on one long text: seconds per text, side by side in one process, and peak
RSS of each path alone, in its own process.

    python benchmarks/document_graph.py MODEL_DIR [--precision int8] [--tokens 50000] [--passes 3] [--results]

MODEL_DIR is an export with ``--document-graph`` (e.g. ``longformer2vec export random-base --output DIR
--precision int8 --document-graph``). The text repeats the exporter's verification paragraph up to
``--tokens`` tokens. The two paths alternate; both run on ``--threads`` ONNX Runtime threads.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from bench_common import loadavg, machine, rss_mb
from results_file import publish
from tokenizers import Tokenizer

from longformer2vec import Longformer2Vec
from longformer2vec.contract import DOCUMENT_EMBEDDING, INPUT_IDS, read_manifest
from longformer2vec.document_graph import find_document_graph


def document_session(model_dir: Path, precision: str, threads: int):
    import onnxruntime as ort

    graph = find_document_graph(read_manifest(model_dir), precision)
    if graph is None:
        sys.exit(f"{model_dir} has no {precision} document graph: export it with --document-graph")
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.log_severity_level = 3
    return ort.InferenceSession(str(graph.path), options, providers=["CPUExecutionProvider"])


def long_text(tokenizer: Tokenizer, tokens: int) -> str:
    from longformer2vec.export.document_export import text_of_tokens

    return text_of_tokens(tokenizer, tokens)


def one_path(args: argparse.Namespace) -> None:
    """Child process: load one path, embed the text once, print its peak RSS (MiB) and seconds."""
    if args.only == "runtime":
        model = Longformer2Vec(args.model_dir, precision=args.precision, intra_op_num_threads=args.threads)
        text = long_text(model.tokenizer, args.tokens)
        start = time.perf_counter()
        model.encode(text)
    else:  # ONNX Runtime and the tokenizer alone, as another program would hold them
        tokenizer = Tokenizer.from_file(str(read_manifest(args.model_dir).tokenizer_path))
        session = document_session(args.model_dir, args.precision, args.threads)
        text = long_text(tokenizer, args.tokens)
        start = time.perf_counter()
        session.run([DOCUMENT_EMBEDDING], {INPUT_IDS: np.asarray([tokenizer.encode(text).ids])})
    print(json.dumps({"rss_mb": rss_mb(), "seconds": time.perf_counter() - start}))


def peak_rss(args: argparse.Namespace, path: str) -> float:
    command = [sys.executable, __file__, str(args.model_dir), "--precision", args.precision, "--tokens"]
    command += [str(args.tokens), "--threads", str(args.threads), "--only", path]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])["rss_mb"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model_dir", type=Path)
    parser.add_argument("--precision", default="int8")
    parser.add_argument("--tokens", type=int, default=50_000)
    parser.add_argument("--passes", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--only", choices=("runtime", "graph"), help=argparse.SUPPRESS)
    parser.add_argument(
        "--results", action="store_true", help="write the document-graph section of RESULTS.md"
    )
    args = parser.parse_args()
    if args.only:
        one_path(args)
        return
    load = loadavg()
    model = Longformer2Vec(args.model_dir, precision=args.precision, intra_op_num_threads=args.threads)
    session = document_session(args.model_dir, args.precision, args.threads)
    text = long_text(model.tokenizer, args.tokens)
    ids = np.asarray([model.tokenizer.encode(text).ids], dtype=np.int64)
    times: dict[str, list[float]] = {"runtime": [], "graph": []}
    vectors = {}
    for _ in range(args.passes):
        start = time.perf_counter()
        vectors["runtime"] = np.asarray(model.encode(text), dtype=np.float32)
        times["runtime"].append(time.perf_counter() - start)
        start = time.perf_counter()
        feed = np.asarray(
            [model.tokenizer.encode(text).ids], dtype=np.int64
        )  # tokenizing counts, as in encode
        vectors["graph"] = session.run([DOCUMENT_EMBEDDING], {INPUT_IDS: feed})[0][0]
        times["graph"].append(time.perf_counter() - start)
        print({k: f"{v[-1]:.2f} s" for k, v in times.items()}, flush=True)
    diff = float(np.abs(vectors["runtime"] - vectors["graph"]).max())
    del model, session
    rss = {path: peak_rss(args, path) for path in ("runtime", "graph")}
    medians = {k: float(np.median(v)) for k, v in times.items()}
    manifest = read_manifest(args.model_dir)
    geometry = f"hidden {manifest.vector_length}, max_length {manifest.max_length}"
    title = (
        "## Document graph against the runtime's windowing "
        f"(`python benchmarks/document_graph.py MODEL_DIR --precision {args.precision} --tokens {args.tokens} "
        f"--passes {args.passes} --results`)"
    )
    conditions = (
        f"{machine()}, {args.threads} threads, load average at start {load}; random weights ({geometry}), "
        f"{args.precision}; one text of {ids.shape[1]:,} tokens; medians of {args.passes} alternating passes; "
        "both timings include tokenizing the text; peak RSS of each path alone in its own process (load, "
        "tokenize, embed once)."
    )
    runtime_row = "runtime: `Longformer2Vec.encode` (windows cut in Python, one ONNX call each)"
    graph_row = "document graph: one `session.run` (windows in an ONNX Loop)"
    rows = [
        "| path | seconds per text | peak RSS, MiB |",
        "|---|---|---|",
        f"| {runtime_row} | {medians['runtime']:.2f} | {rss['runtime']:.0f} |",
        f"| {graph_row} | {medians['graph']:.2f} | {rss['graph']:.0f} |",
    ]
    reading = (
        f"Max |document graph - runtime| over the vector: {diff:.1e}. Graph / runtime time: "
        f"{medians['graph'] / medians['runtime']:.2f}x."
    )
    publish(
        f"document-graph-{manifest.max_length}",
        "\n".join([title, "", conditions, "", *rows, "", reading]),
        args.results,
    )


if __name__ == "__main__":
    main()
