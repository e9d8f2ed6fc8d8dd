"""Where the time goes: ONNX Runtime's profiler, kernel time per op type, for one or more graphs.

    python benchmarks/profile_ops.py before=OLD/model.onnx after=NEW/model.onnx --results

Each graph runs batch 1 at each length (random ids, no global attention) with the profiler on; the
report is the mean over ``--runs`` runs after one warm-up, in milliseconds of kernel time per op type
(ORT's ``*_kernel_time`` events; the graph's wall time is a little higher). ``--results`` writes the
``cpu-profile`` section of benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
from results_file import publish  # benchmarks/ is on sys.path: scripts run from there

from longformer2vec.common import graph_feeds


def batch_one_feeds(length: int, vocab: int = 251) -> dict[str, np.ndarray]:
    """Batch 1: ``length`` random token ids valid in a vocabulary of ``vocab`` entries (the default fits
    every model here), ``<s>`` and ``</s>`` at the ends, no global tokens; the same ids at each length."""
    ids = np.random.default_rng(length).integers(5, max(6, vocab - 1), size=(1, length))
    ids[0, 0], ids[0, -1] = 0, 2
    return {
        "input_ids": ids,
        "attention_mask": np.ones_like(ids),
        "global_attention_mask": np.zeros_like(ids),
    }


def profiled_events(
    graph: str,
    feeds: dict[str, np.ndarray],
    runs: int,
    providers: list[str] | None = None,
    threads: int | None = None,
) -> list[dict]:
    """ONNX Runtime's profiler events of one warm-up run and ``runs`` runs of ``graph`` on ``feeds``."""
    import onnxruntime as ort

    with tempfile.TemporaryDirectory() as tmp:
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        options.enable_profiling = True
        options.profile_file_prefix = str(Path(tmp) / "profile")
        session = ort.InferenceSession(graph, options, providers=providers or ["CPUExecutionProvider"])
        feeds = graph_feeds(feeds, [node.name for node in session.get_inputs()])
        for _ in range(runs + 1):
            session.run(None, feeds)
        return json.loads(Path(session.end_profiling()).read_text())


def node_events(events: list[dict]) -> list[dict]:
    """The per-node ``*_kernel_time`` events (one per node per run; ``args`` has op_name and provider)."""
    return [e for e in events if e.get("cat") == "Node" and e["name"].endswith("_kernel_time")]


def profile(graph: str, length: int, threads: int, runs: int) -> dict[str, float]:
    """Mean kernel milliseconds per op type over ``runs`` profiled runs (after one warm-up)."""
    nodes = node_events(profiled_events(graph, batch_one_feeds(length), runs, threads=threads))
    totals: collections.Counter[str] = collections.Counter()
    per_run: collections.Counter[str] = collections.Counter()
    for event in nodes:
        totals[event["args"]["op_name"]] += event["dur"] / 1000
        per_run[event["name"]] += 1
    seen = max(per_run.values(), default=1)  # the warm-up run is profiled too
    return {op: ms / seen for op, ms in totals.most_common()}


def markdown(
    results: dict[str, dict[int, dict[str, float]]], lengths: list[int], threads: int, top: int
) -> str:
    labels = list(results)
    lines = [
        f"## Where the time goes (`python benchmarks/profile_ops.py {' '.join(sys.argv[1:])}`)",
        "",
        f"ONNX Runtime profiler, kernel milliseconds per op type, batch 1, {threads} threads, mean of the "
        "profiled runs; load average " + " / ".join(f"{x:.2f}" for x in os.getloadavg()) + " at the end.",
    ]
    if len(labels) == 1:
        return "\n".join([*lines, "", *_one_graph_table(results[labels[0]], lengths, top)])
    for length in lengths:
        ops: collections.Counter[str] = collections.Counter()
        for label in labels:
            ops.update(results[label][length])
        lines += ["", f"{length} tokens:", "", "| op type | " + " | ".join(labels) + " |"]
        lines.append("|---" * (len(labels) + 1) + "|")
        for op, _ in ops.most_common(top):
            lines.append(
                f"| {op} | " + " | ".join(f"{results[lb][length].get(op, 0):.0f}" for lb in labels) + " |"
            )
        totals = " | ".join(f"**{sum(results[lb][length].values()):.0f}**" for lb in labels)
        lines.append(f"| all kernels | {totals} |")
    return "\n".join(lines)


def _one_graph_table(result: dict[int, dict[str, float]], lengths: list[int], top: int) -> list[str]:
    """One graph: op types down, lengths across, each cell ms and its share of that length's kernels."""
    ops: collections.Counter[str] = collections.Counter()
    for length in lengths:
        ops.update(result[length])
    totals = {length: sum(result[length].values()) for length in lengths}
    lines = [
        "| op type | " + " | ".join(f"{n} tokens" for n in lengths) + " |",
        "|---" * (len(lengths) + 1) + "|",
    ]
    for op, _ in ops.most_common(top):
        cells = [f"{result[n].get(op, 0):.0f} ({result[n].get(op, 0) / totals[n]:.0%})" for n in lengths]
        lines.append(f"| {op} | " + " | ".join(cells) + " |")
    lines.append("| all kernels | " + " | ".join(f"**{totals[n]:.0f}**" for n in lengths) + " |")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("graphs", nargs="+", help="label=path/to/model.onnx")
    parser.add_argument("--lengths", type=int, nargs="+", default=[512, 4096])
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--top", type=int, default=14, help="op types shown per length")
    parser.add_argument("--results", action="store_true", help="write the cpu-profile section of RESULTS.md")
    args = parser.parse_args(argv)
    graphs = dict(item.split("=", 1) for item in args.graphs)
    results = {
        label: {length: profile(path, length, args.threads, args.runs) for length in args.lengths}
        for label, path in graphs.items()
    }
    publish("cpu-profile", markdown(results, args.lengths, args.threads, args.top), args.results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
