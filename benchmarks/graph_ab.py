"""Two or more graphs side by side: node counts and batch-1 latency, each round in fresh processes.

    python benchmarks/graph_ab.py before=OLD/model.onnx after=NEW/model.onnx --lengths 16 512 4096 --results
    python benchmarks/graph_ab.py on=G/model.onnx off=G/model.onnx \
        --config off:session.intra_op.allow_spinning=0 --section spinning --results   # one setting
    python benchmarks/graph_ab.py on=G/model.onnx off=G/model.onnx --config off:enable_mem_pattern=0

For a change to the graph itself (not the runtime), the question is whether the new graph is faster
than the old one on the same machine at the same moment. Each round runs every graph once in its own
fresh process (so a slow spell on a shared machine hits all of them, and no graph inherits another's
warm caches), in turn, the order reversed every other round; the report gives the median over rounds of each process's median latency, and
the ratio against the first graph. Node counts: in the saved graph, and after ONNX Runtime's own
optimizer (what actually runs; every node is one kernel call, and on CUDA one step of the host-side
launch sequence, which is what batch-1 latency on a GPU is made of at short lengths). Peak RSS: each
process's high-water mark after its runs (lengths in the order given); it includes the optimizer's
saved copy made for the node count, so compare it within one table only. ``--results``
writes the ``graph-ab`` section of benchmarks/RESULTS.md (``--section`` names another, so several
comparisons can stand side by side).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from profile_ops import batch_one_feeds  # benchmarks/ is on sys.path: scripts run from there
from results_file import publish


def worker(graph: str, lengths: list[int], threads: int, config: list[str]) -> dict:
    """Median milliseconds per length of one graph in this process, plus its node counts."""
    import time

    import onnx
    import onnxruntime as ort

    from longformer2vec.common import graph_feeds

    model = onnx.load(graph, load_external_data=False)
    vocab = next(
        (int(t.dims[0]) for t in model.graph.initializer if len(t.dims) == 2 and "word_embeddings" in t.name),
        250,
    )
    with tempfile.TemporaryDirectory() as tmp:
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        for entry in config:
            apply_setting(options, entry)
        options.optimized_model_filepath = str(Path(tmp) / "optimized.onnx")
        session = ort.InferenceSession(graph, options, providers=["CPUExecutionProvider"])
        optimized_nodes = len(
            onnx.load(options.optimized_model_filepath, load_external_data=False).graph.node
        )
    result = {"nodes": len(model.graph.node), "optimized_nodes": optimized_nodes, "ms": {}}
    for length in lengths:
        feed = graph_feeds(batch_one_feeds(length, vocab), [node.name for node in session.get_inputs()])
        session.run(None, feed)
        times = []
        for _ in range(runs_for(length)):
            start = time.perf_counter()
            session.run(None, feed)
            times.append((time.perf_counter() - start) * 1000)
        result["ms"][str(length)] = statistics.median(times)
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB
    return result


def apply_setting(options, entry: str) -> None:
    """``KEY=VALUE``: a ``SessionOptions`` attribute when KEY names one (``enable_mem_pattern=0``), else a
    session config entry (``session.intra_op.allow_spinning=0``)."""
    key, value = entry.split("=", 1)
    if "." not in key and hasattr(options, key):
        current = getattr(options, key)
        setattr(
            options,
            key,
            value not in ("0", "false", "False") if isinstance(current, bool) else type(current)(value),
        )
    else:
        options.add_session_config_entry(key, value)


def runs_for(length: int) -> int:
    """Enough runs for a steady median without spending minutes at 4096 tokens."""
    return max(5, min(50, 20_000 // max(length, 1)))


def ms(value: float) -> str:
    """Milliseconds to three significant figures (a small model runs in a fraction of one)."""
    return f"{value:,.0f}" if value >= 100 else f"{value:.3g}"


def markdown(
    graphs: dict[str, str],
    configs: dict[str, list[str]],
    rounds: dict[str, list[dict]],
    lengths: list[int],
    threads: int,
) -> str:
    labels = list(graphs)
    first = labels[0]

    def median_ms(label: str, length: int) -> float:
        return statistics.median(r["ms"][str(length)] for r in rounds[label])

    lines = [
        f"## Graphs side by side (`python benchmarks/graph_ab.py {' '.join(sys.argv[1:])}`)",
        "",
        f"Batch 1, {threads} threads, random ids, no global tokens; each of {len(rounds[first])} rounds runs "
        "every graph in a fresh process, in turn (order reversed every other round); milliseconds: median over rounds of each process's median "
        "(min-max over rounds), ratio against `"
        + first
        + "`. Load average "
        + " / ".join(f"{x:.2f}" for x in os.getloadavg())
        + " at the end.",
        "",
        "| graph | nodes saved | nodes after ORT's optimizer | peak RSS of a process (min-max) |",
        "|---|---|---|---|",
    ]
    for label in labels:
        r = rounds[label][0]
        settings = "".join(f", `{entry}`" for entry in configs[label])
        rss = [run.get("peak_rss_mb", 0.0) for run in rounds[label]]
        lines.append(
            f"| `{label}` ({graphs[label]}{settings}) | {r['nodes']:,} | {r['optimized_nodes']:,} | "
            f"{statistics.median(rss):,.0f} MB ({min(rss):,.0f}-{max(rss):,.0f}) |"
        )
    lines += ["", "| tokens | " + " | ".join(f"`{label}`" for label in labels) + " |"]
    lines.append("|---" * (len(labels) + 1) + "|")
    for length in lengths:
        cells = []
        for label in labels:
            values = [r["ms"][str(length)] for r in rounds[label]]
            cell = f"{ms(median_ms(label, length))} ({ms(min(values))}-{ms(max(values))})"
            if label != first:
                cell += f" {median_ms(first, length) / median_ms(label, length):.2f}x"
            cells.append(cell)
        lines.append(f"| {length} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("graphs", nargs="*", help="label=path/to/model.onnx (the first is the baseline)")
    parser.add_argument("--lengths", type=int, nargs="+", default=[16, 128, 512, 4096])
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--results", action="store_true", help="write the --section section of RESULTS.md")
    parser.add_argument("--section", default="graph-ab", help="RESULTS.md section name (one per comparison)")
    parser.add_argument(
        "--config",
        action="append",
        default=[],
        metavar="LABEL:KEY=VALUE",
        help="an ONNX Runtime setting for one label's sessions (repeatable): a SessionOptions attribute "
        "(no-pattern:enable_mem_pattern=0) or a session config entry (off:session.intra_op.allow_spinning=0); "
        "the same graph under two labels compares settings",
    )
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args.worker, args.lengths, args.threads, args.config)))
        return 0
    if not args.graphs or any("=" not in item for item in args.graphs):
        parser.error("give graphs as label=path/to/model.onnx")
    graphs = dict(item.split("=", 1) for item in args.graphs)
    configs: dict[str, list[str]] = {label: [] for label in graphs}
    for item in args.config:
        label, _, entry = item.partition(":")
        if label not in graphs or "=" not in entry:
            parser.error(f"--config {item!r}: want LABEL:KEY=VALUE with LABEL one of {list(graphs)}")
        configs[label].append(entry)
    rounds: dict[str, list[dict]] = {label: [] for label in graphs}
    for number in range(args.rounds):
        order = list(graphs.items())
        for label, graph in order if number % 2 == 0 else order[::-1]:  # no graph always goes first
            command = [sys.executable, __file__, "--worker", graph, "--threads", str(args.threads)]
            command += [f"--config={entry}" for entry in configs[label]]
            command += ["--lengths", *map(str, args.lengths)]
            output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
            rounds[label].append(json.loads(output.strip().splitlines()[-1]))
            print(f"round {number + 1} {label}: {rounds[label][-1]['ms']}", file=sys.stderr)
    publish(args.section, markdown(graphs, configs, rounds, args.lengths, args.threads), args.results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
