"""CPU latency, throughput and memory: PyTorch eager, HF's traced ONNX export, our fp32 and int8 graphs.

    python benchmarks/cpu_bench.py --results            # writes the `cpu` section of RESULTS.md + PNG

Without ``--model`` it builds a random model in longformer-base-4096's geometry (timings do not
depend on the weights). Every path runs in its own fresh process, so its peak RSS is its own:

* ``eager``: HF ``LongformerModel`` in PyTorch, forward + masked mean (VectorHub's ``encode``);
* ``hf-traced``: HF's model exported with ``torch.onnx.export`` (TorchScript) *at each length* and
  run at that length only, the route users try first (the graph is wrong at other lengths);
* ``fp32`` / ``int8``: our exported graphs through the runtime, exported as the runtime exports them
  for ``Longformer2Vec()`` (``longformer2vec export --no-global-tokens``: VectorHub's ``encode`` uses
  no global attention, so the graph leaves it out).

Latency: batch 1 at each length, token ids given (tokenization is the same for every path),
median with min and max. Throughput: a generated corpus with lengths spread log-uniformly from 50 to
4096 tokens, embedded with ``Longformer2Vec.bulk_encode`` (ours) or one ``encode`` per document
(eager, as VectorHub's correct path; its ``bulk_encode`` pads every batch to 4096). All paths use
the same thread count. The machine's load average is recorded: run it on a quiet machine.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from results_file import cpu_model, publish  # benchmarks/ is on sys.path: scripts run from there

HERE = Path(__file__).resolve().parent
LENGTHS = (16, 128, 512, 1024, 2048, 4096)  # 16 and 128: sentences, which run unpadded
PATHS = ("eager", "hf-traced", "fp32", "int8")


def _rss_mb() -> float:
    """This process's peak RSS (VmHWM: per address space, so not inherited from the parent the way
    getrusage's ru_maxrss is across fork + exec)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _stats(seconds: list[float]) -> dict[str, float]:
    ms = [s * 1000 for s in seconds]
    return {"median_ms": statistics.median(ms), "min_ms": min(ms), "max_ms": max(ms), "runs": len(ms)}


def _repeats(length: int, base: int) -> int:
    return max(3, base if length <= 1024 else base // 2)


def _ids(length: int, vocab: int) -> np.ndarray:
    rng = np.random.default_rng(length)
    ids = rng.integers(5, vocab, size=(1, length), dtype=np.int64)
    ids[0, 0], ids[0, -1] = 0, 2
    return ids


def make_corpus(tokenizer_path: Path, docs: int, longest: int = 4096, seed: int = 0) -> list[str]:
    """Texts whose token counts (specials included) spread log-uniformly over [50, longest]."""
    from tokenizers import Tokenizer

    from longformer2vec.export.verify import VERIFICATION_TEXT

    tok = Tokenizer.from_file(str(tokenizer_path))
    tok.no_truncation()
    stream = tok.encode(VERIFICATION_TEXT * 60, add_special_tokens=False).ids
    rng = np.random.default_rng(seed)
    texts = []
    for _ in range(docs):
        n = round(math.exp(rng.uniform(math.log(50), math.log(longest)))) - 2
        start = int(rng.integers(0, len(stream) - n))
        texts.append(tok.decode(stream[start : start + n]))
    return texts


# --------------------------------------------------------------------------- workers (one per process)


def worker_eager(args: argparse.Namespace) -> dict:
    import torch
    from transformers import AutoTokenizer, LongformerModel

    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    model = LongformerModel.from_pretrained(args.model, add_pooling_layer=False).eval()
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    startup = time.perf_counter() - start
    vocab = int(model.config.vocab_size)

    def encode_ids(ids: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            hidden = model(input_ids=torch.from_numpy(ids)).last_hidden_state
        return hidden.mean(dim=1).numpy()

    latency = {}
    for length in args.lengths:
        ids = _ids(length, vocab)
        encode_ids(ids)
        latency[length] = _stats([_timed(encode_ids, ids) for _ in range(_repeats(length, args.repeats))])
    rss_latency = _rss_mb()
    corpus = json.loads(Path(args.corpus).read_text())
    start = time.perf_counter()
    tokens = 0
    for text in corpus:
        ids = np.asarray([tokenizer(text)["input_ids"]], dtype=np.int64)
        tokens += ids.shape[1]
        encode_ids(ids)
    seconds = time.perf_counter() - start
    return _report(startup, latency, rss_latency, len(corpus), tokens, seconds)


def worker_graph(args: argparse.Namespace) -> dict:
    from longformer2vec import Longformer2Vec

    start = time.perf_counter()
    model = Longformer2Vec(args.graph_dir, intra_op_num_threads=args.threads)
    startup = time.perf_counter() - start
    session = model._session
    vocab = model.tokenizer.get_vocab_size()
    latency = {}
    for length in args.lengths:
        ids = _ids(length, vocab)
        mask, glob = np.ones_like(ids), np.zeros_like(ids)

        def run(ids=ids, mask=mask, glob=glob) -> None:
            session.run(ids, mask, glob, need_hidden=False)

        run()
        latency[length] = _stats([_timed(run) for _ in range(_repeats(length, args.repeats))])
    rss_latency = _rss_mb()
    corpus = json.loads(Path(args.corpus).read_text())
    tokens = sum(len(e.ids) for e in model.tokenizer.encode_batch(corpus))
    start = time.perf_counter()
    model.bulk_encode(corpus)
    seconds = time.perf_counter() - start
    return _report(startup, latency, rss_latency, len(corpus), tokens, seconds)


def worker_hf_traced(args: argparse.Namespace) -> dict:
    """Load HF's graph traced at one length and time it at that length (no throughput: fixed length)."""
    import onnxruntime as ort

    from longformer2vec.common import graph_feeds

    options = ort.SessionOptions()
    options.intra_op_num_threads = args.threads
    start = time.perf_counter()
    session = ort.InferenceSession(args.graph, options, providers=["CPUExecutionProvider"])
    startup = time.perf_counter() - start
    (length,) = args.lengths
    ids = _ids(length, args.vocab)
    feeds = {
        "input_ids": ids,
        "attention_mask": np.ones_like(ids),
        "global_attention_mask": np.zeros_like(ids),
    }
    feeds = graph_feeds(feeds, [i.name for i in session.get_inputs()])

    def run() -> None:
        session.run(None, feeds)

    run()
    latency = {length: _stats([_timed(run) for _ in range(_repeats(length, args.repeats))])}
    return _report(startup, latency, _rss_mb(), 0, 0, 0.0)


def export_hf_traced(args: argparse.Namespace) -> dict:
    """HF's own model through torch.onnx.export (TorchScript), traced at one length; checked at it."""
    import onnxruntime as ort
    import torch
    from transformers import LongformerModel

    torch.set_num_threads(args.threads)
    model = LongformerModel.from_pretrained(args.model, add_pooling_layer=False).eval()
    (length,) = args.lengths
    ids = torch.from_numpy(_ids(length, int(model.config.vocab_size)))
    mask = torch.ones_like(ids)
    start = time.perf_counter()
    with torch.no_grad():
        torch.onnx.export(
            model,
            (ids, mask),
            args.graph,
            dynamo=False,
            opset_version=17,
            input_names=["input_ids", "attention_mask"],
            output_names=["last_hidden_state"],
            dynamic_axes={"input_ids": {0: "b", 1: "s"}, "attention_mask": {0: "b", 1: "s"}},
        )
    seconds = time.perf_counter() - start
    model.eval()
    with torch.no_grad():
        reference = model(input_ids=ids, attention_mask=mask).last_hidden_state.mean(1).numpy()
    session = ort.InferenceSession(args.graph, providers=["CPUExecutionProvider"])
    pooled = session.run(None, {"input_ids": ids.numpy(), "attention_mask": mask.numpy()})[0].mean(1)
    cosine = float((pooled * reference).sum() / np.linalg.norm(pooled) / np.linalg.norm(reference))
    import onnx

    nodes = len(onnx.load(args.graph, load_external_data=False).graph.node)
    return {"export_s": seconds, "pooled_cosine_vs_eager": cosine, "nodes": nodes}


def _timed(fn, *a) -> float:
    start = time.perf_counter()
    fn(*a)
    return time.perf_counter() - start


def _report(startup, latency, rss_latency, docs, tokens, seconds) -> dict:
    return {
        "startup_s": startup,
        "latency": {str(k): v for k, v in latency.items()},
        "peak_rss_mb_latency": rss_latency,
        "peak_rss_mb": _rss_mb(),
        "bulk": {"docs": docs, "tokens": tokens, "seconds": seconds} if docs else None,
    }


# --------------------------------------------------------------------------- driver


def _run_worker(kind: str, extra: list[str], timeout: float) -> dict:
    cmd = [sys.executable, __file__, "--worker", kind, *extra]
    print("  $", " ".join(cmd[1:]), flush=True)
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        return {"error": " | ".join(tail)[-300:]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _machine() -> str:
    flags = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    isa = ", ".join(f for f in ("avx512_vnni", "avx512f", "avx2") if f in flags) or "?"
    return f"{cpu_model()}, {os.cpu_count()} logical cores ({isa})"


def _versions() -> dict[str, str]:
    import onnxruntime
    import tokenizers
    import torch
    import transformers

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "onnxruntime": onnxruntime.__version__,
        "tokenizers": tokenizers.__version__,
    }


def _fmt(stats: dict | None) -> str:
    if not stats:
        return "-"
    return f"{stats['median_ms']:,.0f} ({stats['min_ms']:,.0f}-{stats['max_ms']:,.0f})"


def markdown(report: dict, command: str, plot: str | None) -> str:
    res = report["paths"]
    eager = res["eager"]
    lines = [
        f"## CPU (`{command}`)",
        "",
        f"Machine: {report['machine']}; {report['threads']} threads for every path; load average "
        f"{report['load_before']} before, {report['load_after']} after. Versions: "
        + ", ".join(f"{k} {v}" for k, v in report["versions"].items())
        + f". Model: {report['model']}. Batch 1, token ids given, milliseconds: median (min-max).",
        "",
        "| tokens | PyTorch eager | HF traced export (at that length) | ours fp32 | ours int8 | int8 vs eager |",
        "|---|---|---|---|---|---|",
    ]
    for length in report["lengths"]:
        key = str(length)
        traced = res["hf-traced"].get(key, {})
        cells = [
            _fmt(eager.get("latency", {}).get(key)),
            "failed" if "error" in traced else _fmt(traced.get("latency", {}).get(key)),
        ]
        ratios = {}
        for name in ("fp32", "int8"):
            stats = res[name].get("latency", {}).get(key)
            ratios[name] = eager["latency"][key]["median_ms"] / stats["median_ms"] if stats else float("nan")
            cells.append(_fmt(stats))
        cells[-2] += f" ({ratios['fp32']:.2f}x)"
        cells.append(f"{ratios['int8']:.2f}x")
        lines.append(f"| {length} | " + " | ".join(cells) + " |")
    lines += ["", "Throughput on the mixed corpus and memory:", ""]
    corpus = report["corpus"]
    lines += [
        (
            f"Corpus: {corpus['docs']} documents, {corpus['tokens']:,} tokens (lengths log-uniform "
            f"50-{corpus['longest']}, median {corpus['median_tokens']})."
        ),
        "",
        "| path | docs/s | tokens/s | vs eager | peak RSS, latency runs up to 4096 | peak RSS, after bulk | start-up |",
        "|---|---|---|---|---|---|---|",
    ]
    eager_rate = eager["bulk"]["docs"] / eager["bulk"]["seconds"]
    for name in ("eager", "fp32", "int8"):
        r = res[name]
        if "error" in r:
            lines.append(f"| {name} | failed: {r['error']} | | | | | |")
            continue
        rate = r["bulk"]["docs"] / r["bulk"]["seconds"]
        lines.append(
            f"| {name} | {rate:.2f} | {r['bulk']['tokens'] / r['bulk']['seconds']:,.0f} | "
            f"{rate / eager_rate:.2f}x | {r['peak_rss_mb_latency']:,.0f} MB | {r['peak_rss_mb']:,.0f} MB | "
            f"{r['startup_s']:.1f} s |"
        )
    traced_rows = [
        f"{length}: {v['export']['nodes']:,} nodes, export {v['export']['export_s']:.0f} s, load "
        f"{v['startup_s']:.1f} s, peak RSS {v['peak_rss_mb']:,.0f} MB, pooled cosine vs eager "
        f"{v['export']['pooled_cosine_vs_eager']:.6f}"
        for length, v in res["hf-traced"].items()
        if "error" not in v and "export" in v
    ]
    if traced_rows:
        lines += ["", "HF traced export, per traced length: " + "; ".join(traced_rows) + "."]
    failed = {k: v["error"] for k, v in res["hf-traced"].items() if "error" in v}
    if failed:
        lines += ["", "HF traced export failures: " + "; ".join(f"{k}: {v}" for k, v in failed.items())]
    if plot:
        lines += ["", f"![latency against length]({plot})"]
    return "\n".join(lines)


def plot_latency(report: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, label in (
        ("eager", "PyTorch eager fp32"),
        ("hf-traced", "HF traced ONNX (at its traced length)"),
        ("fp32", "ours fp32"),
        ("int8", "ours int8"),
    ):
        res = report["paths"][name]
        points = []
        for length in report["lengths"]:
            src = res.get(str(length), {}) if name == "hf-traced" else res
            stats = src.get("latency", {}).get(str(length)) if isinstance(src, dict) else None
            if stats:
                points.append((length, stats["median_ms"] / 1000))
        if points:
            ax.plot(*zip(*points, strict=True), marker="o", label=label)
    ax.set_xlabel("tokens (batch 1)")
    ax.set_ylabel("seconds (median)")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xticks(report["lengths"], [str(n) for n in report["lengths"]])
    ax.grid(True, which="both", alpha=0.3)
    ax.set_title(f"{report['model']}: CPU, {report['threads']} threads", fontsize=9)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def _loadavg() -> str:
    return " / ".join(f"{x:.2f}" for x in os.getloadavg())


def drive(args: argparse.Namespace) -> int:
    from longformer2vec.contract import is_model_dir, load_model_dir
    from longformer2vec.export import export_model
    from longformer2vec.export.synthetic import make_random_longformer

    work = args.workdir.resolve()
    work.mkdir(parents=True, exist_ok=True)
    model = args.model
    if model is None:
        model = work / "random-base-hf"
        if not (model / "config.json").exists():
            make_random_longformer(model, "base")
    model = Path(model).resolve()
    dirs = {"fp32": work / "fp32", "int8": work / "int8"}
    for precision, target in dirs.items():
        reusable = (
            is_model_dir(target) and not load_model_dir(target, verify_hash=False).accepts_global_tokens
        )
        if not (args.reuse_exports and reusable):
            print(f"exporting {precision} -> {target}", flush=True)
            export_model(
                str(model), target, precision=precision, global_tokens=False, progress=lambda _: None
            )
    corpus = make_corpus(dirs["int8"] / "tokenizer.json", args.corpus_docs, args.longest_doc)
    corpus_path = work / "corpus.json"
    corpus_path.write_text(json.dumps(corpus))
    from tokenizers import Tokenizer

    counts = [
        len(e.ids) for e in Tokenizer.from_file(str(dirs["int8"] / "tokenizer.json")).encode_batch(corpus)
    ]

    load_before = _loadavg()
    common = ["--threads", str(args.threads), "--repeats", str(args.repeats), "--corpus", str(corpus_path)]
    lengths = ["--lengths", *map(str, args.lengths)]
    paths: dict[str, dict] = {}
    print("eager", flush=True)
    paths["eager"] = _run_worker("eager", ["--model", str(model), *common, *lengths], args.timeout)
    for name in ("fp32", "int8"):
        print(name, flush=True)
        paths[name] = _run_worker("graph", ["--graph-dir", str(dirs[name]), *common, *lengths], args.timeout)
    paths["hf-traced"] = {}
    vocab = json.loads((model / "config.json").read_text())["vocab_size"]
    for length in [] if args.skip_hf_traced else args.lengths:
        print(f"hf-traced {length}", flush=True)
        graph = work / f"hf-traced-{length}.onnx"
        one = ["--lengths", str(length), "--graph", str(graph)]
        exported = _run_worker("export-hf", ["--model", str(model), *common, *one], args.timeout)
        if "error" in exported:
            paths["hf-traced"][str(length)] = exported
            continue
        run = _run_worker("hf-traced", [*common, *one, "--vocab", str(vocab)], args.timeout)
        paths["hf-traced"][str(length)] = {**run, "export": exported}
        for leftover in work.glob(f"hf-traced-{length}.onnx*"):
            leftover.unlink()

    report = {
        "machine": _machine(),
        "threads": args.threads,
        "load_before": load_before,
        "load_after": _loadavg(),
        "versions": _versions(),
        "model": str(args.model) if args.model else "random weights, longformer-base-4096 geometry",
        "lengths": list(args.lengths),
        "corpus": {
            "docs": len(corpus),
            "tokens": sum(counts),
            "median_tokens": int(np.median(counts)),
            "longest": args.longest_doc,
        },
        "paths": paths,
    }
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    plot_name = None
    if args.plot:
        plot_latency(report, args.plot)
        plot_name = os.path.relpath(args.plot.resolve(), HERE)
    command = "python benchmarks/cpu_bench.py " + " ".join(args.argv)
    publish("cpu", markdown(report, command.strip(), plot_name), args.results)
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", type=Path, default=None, help="HF Longformer dir (default: random base)")
    parser.add_argument("--workdir", type=Path, default=Path("cpu-bench-work"))
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--lengths", type=int, nargs="+", default=list(LENGTHS))
    parser.add_argument(
        "--repeats", type=int, default=5, help="timed runs at <=1024 tokens (half above, min 3)"
    )
    parser.add_argument("--corpus-docs", type=int, default=32)
    parser.add_argument(
        "--longest-doc", type=int, default=4096, help="corpus lengths: 50 to this many tokens"
    )
    parser.add_argument("--skip-hf-traced", action="store_true")
    parser.add_argument(
        "--reuse-exports",
        action="store_true",
        help="keep existing exports in --workdir (when they are the runtime's default graphs, without global tokens)",
    )
    parser.add_argument("--timeout", type=float, default=3600, help="seconds per worker process")
    parser.add_argument("--json", type=Path, default=HERE / "data" / "cpu.json")
    parser.add_argument("--plot", type=Path, default=HERE / "cpu_latency.png")
    parser.add_argument("--results", action="store_true", help="write the cpu section of RESULTS.md")
    # internal: one measured path per process
    parser.add_argument(
        "--worker", choices=("eager", "graph", "hf-traced", "export-hf"), help=argparse.SUPPRESS
    )
    parser.add_argument("--graph-dir", help=argparse.SUPPRESS)
    parser.add_argument("--graph", help=argparse.SUPPRESS)
    parser.add_argument("--corpus", help=argparse.SUPPRESS)
    parser.add_argument("--vocab", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.argv = [a for a in argv if not a.startswith("--worker")]
    if args.worker:
        workers = {
            "eager": worker_eager,
            "graph": worker_graph,
            "hf-traced": worker_hf_traced,
            "export-hf": export_hf_traced,
        }
        print(json.dumps(workers[args.worker](args)))
        return 0
    return drive(args)


if __name__ == "__main__":
    raise SystemExit(main())
