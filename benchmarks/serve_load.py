"""Load test for `longformer2vec serve`: concurrent clients, mixed lengths, batching on vs one at a time.

Starts the server itself (loopback, free port) twice on the same model: with micro-batching (the
defaults) and with `--max-batch-requests 1 --max-wait-ms 0` (one request per model call). Each run is
bounded by a request count and a time limit, then the server is stopped with SIGTERM. Reports
requests/s, tokens/s, p50/p99 latency, errors (non-200 answers or transport failures; must be 0) and
the batching speedup, and writes them to benchmarks/RESULTS.md (section "serving").

    python benchmarks/serve_load.py /tmp/lf/base_int8_v2 /tmp/x/small_int8   # one or more model dirs
    python benchmarks/serve_load.py                                          # builds a small random model

Needs the serve extra plus httpx (the test extra has both); the no-argument form also needs the
export extra to build its model.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results_file import cpu_model, write_section

WORDS = (
    "the",
    "document",
    "model",
    "window",
    "attention",
    "global",
    "local",
    "token",
    "sequence",
    "vector",
    "embedding",
    "search",
    "index",
    "query",
    "long",
    "text",
    "paragraph",
    "chapter",
    "section",
    "beach",
    "walk",
    "dog",
    "river",
    "mountain",
    "city",
    "history",
    "science",
    "music",
    "language",
    "computer",
    "network",
    "energy",
    "market",
    "policy",
    "health",
    "water",
    "light",
    "time",
    "year",
    "people",
)


@dataclass
class RunResult:
    label: str
    flags: list[str]
    requests: int
    ok: int
    errors: int
    seconds: float
    tokens: int
    latencies: list[float]
    mean_batch_requests: float
    mean_batch_texts: float
    worst_vector_diff: float | None = None

    @property
    def rps(self) -> float:
        return self.ok / self.seconds

    def pct(self, q: float) -> float:
        return float(np.percentile(self.latencies, q)) * 1000 if self.latencies else float("nan")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def load_average() -> float:
    return os.getloadavg()[0]


def wait_for_quiet_machine(threshold: float, max_wait_s: float) -> float:
    """Other jobs share this machine: wait (bounded) until the 1-minute load average drops."""
    deadline = time.monotonic() + max_wait_s
    load = load_average()
    while load > threshold and time.monotonic() < deadline:
        print(f"load average {load:.2f} > {threshold}: waiting", flush=True)
        time.sleep(15)
        load = load_average()
    return load


def make_texts(tokenizer_path: Path, n: int, lo: int, hi: int, seed: int) -> tuple[list[str], list[int]]:
    """n texts of roughly uniform token counts in [lo, hi] (specials included), deterministic."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(tokenizer_path))
    tok.no_truncation()
    rng = random.Random(seed)
    texts, counts = [], []
    for _ in range(n):
        target = rng.randint(lo, hi)
        words = [rng.choice(WORDS) for _ in range(target)]
        # Trim to the target token count (one word can be several tokens).
        low, high = 1, len(words)
        while low < high:
            mid = (low + high + 1) // 2
            if len(tok.encode(" ".join(words[:mid])).ids) <= target:
                low = mid
            else:
                high = mid - 1
        text = " ".join(words[:low])
        texts.append(text)
        counts.append(len(tok.encode(text).ids))
    return texts, counts


def build_small_model(work: Path) -> Path:
    """A random 'small'-geometry Longformer exported to int8 (when no model directory is given)."""
    from longformer2vec.export.synthetic import make_random_longformer

    hf = make_random_longformer(work / "hf", "small")
    out = work / "int8"
    cmd = [
        sys.executable,
        "-m",
        "longformer2vec",
        "export",
        str(hf),
        "--output",
        str(out),
        "--precision",
        "int8",
    ]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return out


SERVER_PROVIDERS: set[str] = set()  # first execution provider of each server started


def start_server(model: Path, port: int, flags: list[str], log: Path) -> subprocess.Popen:
    cmd = [
        sys.executable,
        "-m",
        "longformer2vec",
        "serve",
        "--model",
        str(model),
        "--port",
        str(port),
        *flags,
    ]
    proc = subprocess.Popen(cmd, stdout=open(log, "wb"), stderr=subprocess.STDOUT)  # noqa: SIM115
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}: {log.read_text()}")
        try:
            health = httpx.get(f"http://127.0.0.1:{port}/health", timeout=2)
            if health.status_code == 200:
                print(f"server up: {health.json()}", flush=True)
                SERVER_PROVIDERS.update(health.json().get("providers", [])[:1])
                return proc
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"server not ready after 180 s: {log.read_text()}")


def metric_sum(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    return 0.0


def run_mode(
    label: str,
    model: Path,
    flags: list[str],
    texts: list[str],
    counts: list[int],
    args: argparse.Namespace,
    expected: np.ndarray | None = None,
) -> RunResult:
    port = free_port()
    log = Path(tempfile.gettempdir()) / f"serve_load_{label}_{port}.log"
    proc = start_server(model, port, ["--host", "127.0.0.1", *flags], log)
    url = f"http://127.0.0.1:{port}/v1/embeddings"
    try:
        with httpx.Client(timeout=120) as warm:  # first ONNX runs allocate; keep them out of the figures
            for text in texts[:4]:
                warm.post(url, json={"input": text}).raise_for_status()
        before = httpx.get(f"http://127.0.0.1:{port}/metrics").text
        lock = threading.Lock()
        next_index = [0]
        latencies: list[float] = []
        tokens = [0]
        errors = [0]
        ok = [0]
        worst = [0.0]
        stop_at = time.monotonic() + args.time_limit

        def client() -> None:
            with httpx.Client(timeout=120) as http:
                while time.monotonic() < stop_at:
                    with lock:
                        i = next_index[0]
                        if i >= args.requests:
                            return
                        next_index[0] += 1
                    text = texts[i % len(texts)]
                    start = time.perf_counter()
                    diff = 0.0
                    try:
                        res = http.post(url, json={"input": text})
                        good = res.status_code == 200 and len(res.json()["data"]) == 1
                        if good and expected is not None:
                            got = np.asarray(res.json()["data"][0]["embedding"], dtype=np.float32)
                            diff = float(np.abs(got - expected[i % len(texts)]).max())
                    except httpx.HTTPError:
                        good = False
                    elapsed = time.perf_counter() - start
                    with lock:
                        worst[0] = max(worst[0], diff)
                        if good:
                            ok[0] += 1
                            latencies.append(elapsed)
                            tokens[0] += counts[i % len(texts)]
                        else:
                            errors[0] += 1

        started = time.perf_counter()
        threads = [threading.Thread(target=client) for _ in range(args.clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        seconds = time.perf_counter() - started
        after = httpx.get(f"http://127.0.0.1:{port}/metrics").text

        def delta(name: str) -> float:
            return metric_sum(after, name) - metric_sum(before, name)

        batches = delta("longformer2vec_batch_size_count") or 1.0
        return RunResult(
            label,
            flags,
            next_index[0],
            ok[0],
            errors[0],
            seconds,
            tokens[0],
            latencies,
            delta("longformer2vec_batch_requests_sum") / batches,
            delta("longformer2vec_batch_size_sum") / batches,
            worst[0] if expected is not None else None,
        )
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()


def versions() -> str:
    from importlib.metadata import version

    names = ("longformer2vec", "onnxruntime", "tokenizers", "fastapi", "uvicorn", "httpx")
    return ", ".join(f"{n} {version(n)}" for n in names) + f", Python {platform.python_version()}"


def gpu_note() -> str:
    """', GPU: <name> (server on CUDAExecutionProvider)' when the servers reported CUDA in /health."""
    import shutil

    if "CUDAExecutionProvider" not in SERVER_PROVIDERS or not shutil.which("nvidia-smi"):
        return ""
    query = ["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"]
    name = subprocess.run(query, capture_output=True, text=True, check=False).stdout.strip().splitlines()
    return f", GPU: {name[0]} (server on CUDAExecutionProvider)" if name else ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "models", nargs="*", help="exported model directories (default: build a small random one)"
    )
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--requests", type=int, default=60, help="requests per mode")
    parser.add_argument("--time-limit", type=float, default=60.0, help="seconds per mode")
    parser.add_argument("--min-tokens", type=int, default=10)
    parser.add_argument("--max-tokens", type=int, default=500)
    parser.add_argument("--threads", type=int, default=None, help="server --threads (default: all cores)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--check-vectors",
        action="store_true",
        help="compare every answer with Longformer2Vec.encode of the same text in this process",
    )
    parser.add_argument("--max-load", type=float, default=1.5, help="wait until the load average is below")
    parser.add_argument("--max-load-wait", type=float, default=600.0)
    parser.add_argument("--no-write", action="store_true", help="print only, leave RESULTS.md alone")
    parser.add_argument(
        "--section", default="serving", help="RESULTS.md section to write (e.g. serving-cuda)"
    )
    args = parser.parse_args()

    common = ["--threads", str(args.threads)] if args.threads else []
    modes = [
        ("batching", common),
        ("one-at-a-time", [*common, "--max-batch-requests", "1", "--max-wait-ms", "0"]),
    ]
    rows: list[str] = []
    model_lines: list[str] = []
    speedups: list[str] = []
    errors = 0
    with tempfile.TemporaryDirectory() as tmp:
        models = [Path(m) for m in args.models] or [build_small_model(Path(tmp))]
        for model in models:
            manifest = json.loads((model / "manifest.json").read_text())
            texts, counts = make_texts(
                model / "tokenizer.json", 64, args.min_tokens, args.max_tokens, args.seed
            )
            graphs = manifest.get("graphs", [manifest])  # format 2 lists graphs; format 1 is one graph
            precisions = "/".join(g["precision"] for g in graphs if not g.get("global_tokens"))
            pad_multiple = graphs[0]["pad_multiple"]
            name = f"`{model.name}`"
            model_lines.append(
                f"- {name}: {manifest['model_id']}, {precisions} (the server runs the CPU default, int8, when present), "
                f"{len(manifest['attention_windows'])} layers, vector {manifest['vector_length']}, "
                f"window {max(manifest['attention_windows'])}, pad multiple {pad_multiple}; "
                f"texts {min(counts)}-{max(counts)} tokens (mean {np.mean(counts):.0f})"
            )
            expected = None
            if args.check_vectors:
                from longformer2vec import Longformer2Vec

                reference = Longformer2Vec(model)  # the server's default graph, one text per call
                expected = np.stack([reference.encode_numpy([text])[0] for text in texts])
                del reference
            results = []
            for label, flags in modes:
                load = wait_for_quiet_machine(args.max_load, args.max_load_wait)
                print(f"{model.name} {label}: load average {load:.2f}, flags {flags}", flush=True)
                r = run_mode(label, model, flags, texts, counts, args, expected)
                results.append(r)
                errors += r.errors
                rows.append(
                    f"| {name} | {r.label} | `{' '.join(r.flags) or '(defaults)'}` | {r.ok}/{r.requests} | "
                    f"{r.errors} | {r.rps:.2f} | {r.tokens / r.seconds:.0f} | {r.pct(50):.0f} | {r.pct(99):.0f} "
                    f"| {r.mean_batch_requests:.1f} | {load:.2f} |"
                    + ("" if r.worst_vector_diff is None else f" {r.worst_vector_diff:.1e} |")
                )
            speedups.append(f"{name} **{results[0].rps / results[1].rps:.2f}x**")

    lines = [
        "## Serving load test" + ("" if args.section == "serving" else f" ({args.section})"),
        "",
        f"`python benchmarks/serve_load.py {' '.join(sys.argv[1:])}`".replace("` ", "`"),
        "",
        (
            f"Machine: {os.cpu_count()} cores, {cpu_model()}, {platform.system()} {platform.release()}"
            f"{gpu_note()}; "
            f"{versions()}. Server and clients on the same machine (loopback); server ONNX Runtime threads: "
            f"{args.threads or 'default (all cores)'}, not spinning (`serve`'s default); clients: "
            f"{args.clients} threads with httpx, one text per "
            f"request, sent back to back; each mode at most {args.requests} requests or {args.time_limit:.0f} s, "
            "after 4 warm-up requests. The machine is shared with other jobs: the last column is the 1-minute "
            f"load average when the mode started (the script waits for < {args.max_load} for up to "
            f"{args.max_load_wait:.0f} s)."
        ),
        "",
        "Models (random weights; texts: 64 random-word texts, cycled):",
        "",
        *model_lines,
        "",
        (
            "| model | mode | server flags | requests ok | errors | requests/s | tokens/s | p50 ms | p99 ms "
            "| requests per model call | load |" + (" max abs vs encode |" if args.check_vectors else "")
        ),
        "|---|---|---|---|---|---|---|---|---|---|---|" + ("---|" if args.check_vectors else ""),
        *rows,
        "",
        ("Micro-batching throughput / one-at-a-time throughput: " + ", ".join(speedups) + "."),
    ]
    body = "\n".join(lines)
    print(body)
    if not args.no_write:
        print(f"written to {write_section(args.section, body)}")
    if errors:
        raise SystemExit("errors in the load test")


if __name__ == "__main__":
    main()
