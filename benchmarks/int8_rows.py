"""What batch independence costs int8 graphs: one row per ONNX call (the runtime's rule, so that a text's
vector never depends on its neighbours) against several rows per call, side by side in one process.

    python benchmarks/int8_rows.py MODEL_DIR CORPUS_JSON [--passes 3] [--results]

MODEL_DIR is an export with an int8 graph (e.g. ``cpu_bench.py --workdir W`` leaves one in ``W/ours``);
CORPUS_JSON a JSON list of documents (``W/corpus.json``: 32 documents of 50-4,096 tokens). The sentences
are 64 spans of 12-20 words cut from the first document. The two modes alternate.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from bench_common import loadavg, machine
from results_file import publish

from longformer2vec import Longformer2Vec, batching

MODES = {
    "one row per call": batching.max_rows_per_call,
    "up to batch_size rows per call": lambda graph, batch_size: batch_size,
}


def sentences_from(document: str, count: int = 64) -> list[str]:
    words = document.split()
    return [" ".join(words[i : i + 12 + i % 9]) for i in range(0, count * 3, 3)]


def measure(model: Longformer2Vec, texts: list[str], passes: int) -> dict[str, list[float]]:
    """Seconds per pass over ``texts`` in each mode, the modes alternating."""
    model.encode_numpy(texts[:4])  # warm-up
    times: dict[str, list[float]] = {name: [] for name in MODES}
    vectors: dict[str, np.ndarray] = {}
    try:
        for _ in range(passes):
            for name, rule in MODES.items():
                batching.max_rows_per_call = rule
                start = time.perf_counter()
                vectors[name] = model.encode_numpy(texts)
                times[name].append(time.perf_counter() - start)
    finally:
        batching.max_rows_per_call = MODES["one row per call"]
    alone = model.encode_numpy(texts[:1])[0]
    for name, found in vectors.items():
        print(f"  {name}: first text max |batch - alone| = {np.abs(found[0] - alone).max():.2e}")
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model_dir", type=Path)
    parser.add_argument("corpus", type=Path)
    parser.add_argument("--passes", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--results", action="store_true", help="write the int8-rows section of RESULTS.md")
    args = parser.parse_args()
    documents = json.loads(args.corpus.read_text(encoding="utf-8"))
    model = Longformer2Vec(args.model_dir, precision="int8", intra_op_num_threads=args.threads)
    load = loadavg()
    rows = []
    for workload, texts in (("documents", documents), ("sentences", sentences_from(documents[0]))):
        print(f"{workload}: {len(texts)} texts")
        times = measure(model, texts, args.passes)
        medians = {name: float(np.median(ts)) for name, ts in times.items()}
        one, several = medians["one row per call"], medians["up to batch_size rows per call"]
        rows.append(
            f"| {workload} ({len(texts)}) | {len(texts) / one:.2f} | {len(texts) / several:.2f} | "
            f"{several / one:.2f}x |"
        )
    title = (
        "## int8: one row per call against batches "
        f"(`python benchmarks/int8_rows.py MODEL_DIR CORPUS_JSON --passes {args.passes} --results`)"
    )
    conditions = (
        f"{machine()}, {args.threads} threads, load average at start {load}; medians of {args.passes} "
        "alternating passes each; batch_size 8, max_batch_tokens 2048 (the CPU defaults)."
    )
    reading = (
        "One row per call keeps every text's vector independent of its neighbours (int8 activations are "
        "scaled per call); in batches the same text moves by up to the `max |batch - alone|` the script prints."
    )
    header = "| texts | one row per call, texts/s | batches, texts/s | one row against batches |"
    body = "\n".join([title, "", conditions, "", header, "|---|---|---|---|", *rows, "", reading])
    publish("int8-rows", body, args.results)


if __name__ == "__main__":
    main()
