"""Start-up time of `Longformer2Vec(DIR)`: without the optimized-graph cache, and loading from it.

    python benchmarks/startup.py MODEL_DIR [MODEL_DIR ...] [--runs 5] [--texts CORPUS.json] [--results]

Each measurement is a fresh process (model load + one short `encode`), so nothing is warm in memory
except the OS page cache, which every variant gets equally after the first run. With ``--texts`` (a
JSON list of strings, e.g. cpu_bench.py's corpus.json) each process then ``bulk_encode``s them, so
the peak RSS column shows what the cached graph costs in memory on a real workload. ``--results``
writes the ``startup`` section of benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from results_file import publish  # benchmarks/ is on sys.path: scripts run from there

from longformer2vec.contract import load_model_dir

CHILD = """
import json, resource, sys, time
start = time.perf_counter()
from longformer2vec import Longformer2Vec
model = Longformer2Vec(sys.argv[1], cache_dir=sys.argv[2], optimized_cache=sys.argv[3] == "1")
loaded = time.perf_counter()
model.encode("A short warm-up sentence.")
done = time.perf_counter()
if sys.argv[4]:
    model.bulk_encode(json.load(open(sys.argv[4], encoding="utf-8")))
bulk = time.perf_counter() - done
peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"load_s": loaded - start, "first_encode_s": done - loaded, "bulk_s": bulk, "peak_mb": peak_mb}))
"""


def measure(model_dir: str, cache: str, use_cache: bool, texts: str = "") -> dict[str, float]:
    cmd = [sys.executable, "-c", CHILD, model_dir, cache, "1" if use_cache else "0", texts]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("models", nargs="+")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument(
        "--texts", default="", help="JSON list of texts each process bulk-encodes after start-up"
    )
    parser.add_argument("--results", action="store_true")
    args = parser.parse_args(argv)
    rows = []
    for model_dir in args.models:
        with tempfile.TemporaryDirectory() as cache:
            measure(model_dir, cache, use_cache=True)  # writes the cache (and warms the page cache)
            off = [measure(model_dir, cache, False, args.texts) for _ in range(args.runs)]
            on = [measure(model_dir, cache, True, args.texts) for _ in range(args.runs)]
        manifest = load_model_dir(Path(model_dir), verify_hash=False)
        graph = manifest.find("int8", False) or manifest.graphs[0]  # what Longformer2Vec() runs on the CPU
        med = {k: statistics.median(r[k] for r in off) for k in off[0]}
        med_on = {k: statistics.median(r[k] for r in on) for k in on[0]}
        rows.append(
            f"| `{Path(model_dir).name}` ({graph.precision}, {graph.node_count:,} nodes) | "
            f"{med['load_s']:.2f} s | {med_on['load_s']:.2f} s | {med['first_encode_s']:.3f} s | "
            f"{med_on['first_encode_s']:.3f} s | "
            + (f"{med['bulk_s']:.1f} s | {med_on['bulk_s']:.1f} s | " if args.texts else "")
            + f"{med['peak_mb']:,.0f} MB | {med_on['peak_mb']:,.0f} MB |"
        )
    workload = "one short `encode`"
    if args.texts:
        texts = json.loads(Path(args.texts).read_text(encoding="utf-8"))
        workload += f", then `bulk_encode` of {len(texts)} texts ({Path(args.texts).name})"
    bulk_header = "bulk, no cache | bulk, cached | " if args.texts else ""
    lines = [
        f"## Start-up (`python benchmarks/startup.py {' '.join(sys.argv[1:])}`)",
        "",
        f"Fresh process per measurement, median of {args.runs}; {os.cpu_count()} cores; load average "
        + " / ".join(f"{x:.2f}" for x in os.getloadavg())
        + " at the end. `Longformer2Vec(DIR)` with `optimized_cache=False` (the default: ONNX Runtime optimizes "
        "the graph at every start) against `optimized_cache=True` (loads the optimized copy written by the "
        f"first start). Each process: load, {workload}; peak RSS is the process's maximum.",
        "",
        "| model | load, no cache | load, cached | first encode, no cache | first encode, cached | "
        + bulk_header
        + "peak RSS, no cache | peak RSS, cached |",
        "|---" * (7 + 2 * bool(args.texts)) + "|",
        *rows,
    ]
    publish("startup", "\n".join(lines), args.results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
