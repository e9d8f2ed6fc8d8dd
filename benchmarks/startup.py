"""Start-up time of `Longformer2Vec(DIR)`: without the optimized-graph cache, and loading from it.

    python benchmarks/startup.py MODEL_DIR [MODEL_DIR ...] [--runs 5] [--results]

Each measurement is a fresh process (model load + one short `encode`), so nothing is warm in memory
except the OS page cache, which every variant gets equally after the first run. ``--results`` writes
the ``startup`` section of benchmarks/RESULTS.md.
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

CHILD = """
import json, sys, time
start = time.perf_counter()
from longformer2vec import Longformer2Vec
model = Longformer2Vec(sys.argv[1], cache_dir=sys.argv[2], optimized_cache=sys.argv[3] == "1")
loaded = time.perf_counter()
model.encode("A short warm-up sentence.")
done = time.perf_counter()
print(json.dumps({"load_s": loaded - start, "first_encode_s": done - loaded}))
"""


def measure(model_dir: str, cache: str, use_cache: bool) -> dict[str, float]:
    cmd = [sys.executable, "-c", CHILD, model_dir, cache, "1" if use_cache else "0"]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("models", nargs="+")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--results", action="store_true")
    args = parser.parse_args(argv)
    rows = []
    for model_dir in args.models:
        with tempfile.TemporaryDirectory() as cache:
            measure(model_dir, cache, use_cache=True)  # writes the cache (and warms the page cache)
            off = [measure(model_dir, cache, use_cache=False) for _ in range(args.runs)]
            on = [measure(model_dir, cache, use_cache=True) for _ in range(args.runs)]
        manifest = json.loads((Path(model_dir) / "manifest.json").read_text())
        med = {k: statistics.median(r[k] for r in off) for k in off[0]}
        med_on = {k: statistics.median(r[k] for r in on) for k in on[0]}
        rows.append(
            f"| `{Path(model_dir).name}` ({manifest['precision']}, {manifest['node_count']:,} nodes) | "
            f"{med['load_s']:.2f} s | {med_on['load_s']:.2f} s | {med['first_encode_s']:.3f} s | "
            f"{med_on['first_encode_s']:.3f} s |"
        )
    lines = [
        f"## Start-up (`python benchmarks/startup.py {' '.join(sys.argv[1:])}`)",
        "",
        f"Fresh process per measurement, median of {args.runs}; {os.cpu_count()} cores; load average "
        + " / ".join(f"{x:.2f}" for x in os.getloadavg())
        + " at the end. `Longformer2Vec(DIR)` with `optimized_cache=False` (the default: ONNX Runtime optimizes "
        "the graph at every start) against `optimized_cache=True` (loads the optimized copy written by the "
        "first start).",
        "",
        "| model | load, no cache | load, cached | first encode, no cache | first encode, cached |",
        "|---|---|---|---|---|",
        *rows,
    ]
    publish("startup", "\n".join(lines), args.results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
