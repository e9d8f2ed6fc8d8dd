"""CUDA figures: PyTorch eager (fp32, fp16) against our fp32 and fp16 graphs on ONNX Runtime's CUDA provider.

    python benchmarks/cuda_bench.py [--model HF_DIR] [--workdir DIR] [--json OUT.json] [--results]
    python benchmarks/cuda_bench.py --from-json benchmarks/data/cuda_h100.json --results   # re-render

Needs a CUDA device, `onnxruntime-gpu` (the `longformer2vec-gpu` distribution) and the export extra.
Without ``--model`` it builds a random model in longformer-base-4096's geometry (weights do not change
the timings). Every graph is exported as the runtime exports it for ``Longformer2Vec()`` on a GPU
(``global_tokens=False``: VectorHub's ``encode`` uses no global attention, so the graph leaves it out,
and with it the TopK whose size is read back to the host). Steps, all in one process so the ratios
are side by side:

1. export the fp32 graph (``export_model``: verified against PyTorch on the CPU, as always);
2. export the fp16 graph (``export_model(precision="fp16")``: the exporter checks it on CUDA against
   PyTorch fp32 on its parity cases and records max-abs and cosines in the manifest);
3. export the fp16 graph with ONNX Runtime's fused ``LongformerAttention`` (``layout="fused"``, one
   node per layer; verified on CUDA the same way; ``--no-fused`` skips it, a failed export is
   reported instead of timed);
4. count each graph's nodes and host-device copies after ONNX Runtime's optimizer for the provider,
   and profile the fp16 graphs at batch 1 (shortest and longest length): node calls per run and the
   host's time inside them against the wall time, which says whether a call is launch-bound;
5. time batch 1 and batch 8 at 512, 1024, 2048 and 4096 tokens: HF eager fp32 and fp16 (the
   VectorHub path: forward + masked mean), our graphs through the runtime's ``OnnxSession`` (IO
   binding on, only the pooled vector fetched), and fp16 without IO binding; medians, min, max.

Writes the figures as JSON (``--json``) and a markdown table on stdout; ``--results`` also writes
the ``cuda`` section of benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import collections
import json
import platform
import statistics
import time
from pathlib import Path

import numpy as np
from results_file import publish  # benchmarks/ is on sys.path: scripts run from there

LENGTHS = (512, 1024, 2048, 4096)
BATCHES = (1, 8)


def _load_cuda_libraries() -> None:
    """Make the CUDA/cuDNN libraries of the nvidia-* wheels visible to onnxruntime-gpu."""
    import onnxruntime as ort
    import torch

    torch.zeros(1, device="cuda")  # loads torch's CUDA libraries into the process
    preload = getattr(ort, "preload_dlls", None)
    if preload is not None:
        preload()


def _stats(seconds: list[float]) -> dict[str, float]:
    ms = [s * 1000 for s in seconds]
    return {"median_ms": statistics.median(ms), "min_ms": min(ms), "max_ms": max(ms), "runs": len(ms)}


def _inputs(batch: int, length: int, vocab: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    ids = rng.integers(5, vocab, size=(batch, length), dtype=np.int64)
    ids[:, 0], ids[:, -1] = 0, 2
    return ids, np.ones_like(ids), np.zeros_like(ids)


def _time(fn, warmup: int, repeats: int) -> list[float]:
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


def _providers(device: str) -> list[str]:
    return (["CUDAExecutionProvider"] if device == "cuda" else []) + ["CPUExecutionProvider"]


def _synchronize(device: str) -> None:
    import torch

    if device == "cuda":
        torch.cuda.synchronize()


def time_eager(
    hf_model, dtype, batch: int, length: int, vocab: int, warmup: int, repeats: int, device: str = "cuda"
) -> dict:
    import torch

    model = hf_model.to(device, dtype=dtype)
    ids, mask, glob = (torch.from_numpy(a).to(device) for a in _inputs(batch, length, vocab))

    def run() -> None:
        with torch.no_grad():
            hidden = model(input_ids=ids, attention_mask=mask, global_attention_mask=glob).last_hidden_state
            m = mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * m).sum(1) / m.sum(1)
            pooled.float().cpu()

    if device != "cuda":
        return _stats(_time(run, warmup, repeats))
    torch.cuda.reset_peak_memory_stats()
    stats = _stats(_time(run, warmup, repeats))
    stats["peak_gpu_mb"] = torch.cuda.max_memory_allocated() / 2**20
    return stats


def graph_placement(graph: Path, providers: list[str]) -> dict:
    """Nodes of ``graph`` after ONNX Runtime's optimizer for ``providers``, and how many of them are
    host-device copies (``Memcpy*``: each one a transfer, and any one rules out CUDA graphs). Batch-1
    latency on a GPU is mostly the host launching these nodes one by one, so the count explains it."""
    import tempfile

    import onnx
    import onnxruntime as ort

    try:
        with tempfile.TemporaryDirectory() as tmp:
            options = ort.SessionOptions()
            options.optimized_model_filepath = str(Path(tmp) / "optimized.onnx")
            ort.InferenceSession(str(graph), options, providers=providers)
            nodes = onnx.load(options.optimized_model_filepath, load_external_data=False).graph.node
    except Exception as exc:  # noqa: BLE001 - a count we cannot take is reported, the timings still run
        return {"error": f"{type(exc).__name__}: {exc}"}
    return {
        "nodes": len(nodes),
        "memcpy": sum(node.op_type.startswith("Memcpy") for node in nodes),
    }


def launch_profile(graph: Path, providers: list[str], length: int, vocab: int, runs: int = 5) -> dict:
    """Where batch 1's time goes on ``providers``: ONNX Runtime's profiler over ``runs`` runs (after a
    warm-up). On the CUDA provider a node's profiled time is the host's time inside it: launching its
    kernels, which run asynchronously, or waiting on a host-device copy. When those times add up to
    most of the wall time, the call is bound by the host's launch sequence (fewer nodes or CUDA graphs
    help), not by the GPU's arithmetic."""
    from profile_ops import batch_one_feeds, node_events, profiled_events

    try:
        events = profiled_events(str(graph), batch_one_feeds(length, vocab), runs, providers)
    except Exception as exc:  # noqa: BLE001 - a profile we cannot take is reported, the timings still run
        return {"error": f"{type(exc).__name__}: {exc}"}
    runs_seen = sorted(
        (e for e in events if e.get("cat") == "Session" and e["name"] == "model_run"), key=lambda e: e["ts"]
    )
    warm_up = runs_seen[0]  # profiled too, and on CUDA it holds the first-call set-up: left out
    timed = runs_seen[1:] or runs_seen
    nodes = [
        e for e in node_events(events) if len(runs_seen) == 1 or e["ts"] >= warm_up["ts"] + warm_up["dur"]
    ]
    walls = [e["dur"] / 1000 for e in timed]
    per_run = len(timed)
    host_ms: collections.Counter[str] = collections.Counter()
    on_cpu = 0
    for event in nodes:
        host_ms[event["args"]["op_name"]] += event["dur"] / 1000 / per_run
        on_cpu += event["args"].get("provider") == "CPUExecutionProvider"
    return {
        "length": length,
        "wall_ms": statistics.median(walls),
        "node_calls": len(nodes) / per_run,
        "node_calls_on_cpu": on_cpu / per_run,
        "node_host_ms": sum(host_ms.values()),
        "top_ops_host_ms": dict(host_ms.most_common(6)),
    }


def time_graph(session, batch: int, length: int, vocab: int, warmup: int, repeats: int) -> dict:
    ids, mask, glob = _inputs(batch, length, vocab)
    return _stats(_time(lambda: session.run(ids, mask, glob, need_hidden=False), warmup, repeats))


def markdown(report: dict) -> str:
    json_path = report.get("json", "benchmarks/data/cuda_h100.json")  # older reports did not record it
    lines = [
        f"## CUDA (`python benchmarks/cuda_bench.py --json {json_path} --results`)",
        "",
        (
            f"GPU: {report['gpu']}; onnxruntime-gpu {report['versions']['onnxruntime']}, torch "
            f"{report['versions']['torch']}, transformers {report['versions']['transformers']}; "
            f"model: {report['model']}. Medians of {report['repeats']} runs after {report['warmup']} warm-ups "
            "(min-max in brackets), milliseconds per batch, random token ids, no global attention. "
            "Eager = HF `LongformerModel` forward + masked mean + copy of the vector to the host (VectorHub's "
            "`encode` without tokenization). Graphs run through the runtime's `OnnxSession` (IO binding, only "
            "`sentence_embedding` fetched) unless marked otherwise."
        ),
        "",
    ]
    columns = list(next(iter(report["timings"].values())).keys())
    lines.append("| batch x tokens | " + " | ".join(columns) + " | fp16 graph vs eager fp32 |")
    lines.append("|---" * (len(columns) + 2) + "|")
    for shape, row in report["timings"].items():
        cells = [f"{r['median_ms']:.2f} ({r['min_ms']:.2f}-{r['max_ms']:.2f})" for r in row.values()]
        ratio = row["eager fp32"]["median_ms"] / row["ours fp16"]["median_ms"]
        lines.append(f"| {shape} | " + " | ".join(cells) + f" | {ratio:.1f}x |")
    worst = min(r["pooled_min_cosine"] for r in report["parity_fp16"])
    worst_abs = max(r["token_max_abs"] for r in report["parity_fp16"])
    source = report.get("parity_source", "PyTorch fp32 on CUDA with TF32 off as reference")
    lines += [
        "",
        (
            f"fp16 graph parity ({source}), exporter's {len(report['parity_fp16'])} cases up to "
            f"{max(max(r['lengths']) for r in report['parity_fp16'])} tokens: pooled cosine >= {worst:.6f}, "
            f"token max |d| <= {worst_abs:.2e}."
        ),
    ]
    placement = report.get("placement")
    if placement:
        counts = [
            f"{name}: {p['nodes']:,} nodes, {p['memcpy']} host-device copies"
            if "nodes" in p
            else f"{name}: not counted ({p['error']})"
            for name, p in placement.items()
        ]
        lines += ["", "Graphs after ONNX Runtime's optimizer for this provider: " + "; ".join(counts) + "."]
    for name, rows in report.get("launch_profile", {}).items():
        lines += ["", _launch_paragraph(name, rows)]
    fused = report.get("parity_fp16_fused")
    if fused:
        lines += [
            "",
            (
                'fp16 fused graph (`layout="fused"`: ONNX Runtime\'s `LongformerAttention`, one node per layer) '
                f"parity on CUDA, same cases: pooled cosine >= {min(r['pooled_min_cosine'] for r in fused):.6f}, "
                f"token max |d| <= {max(r['token_max_abs'] for r in fused):.2e}."
            ),
        ]
    elif report.get("fused_error"):
        lines += ["", f"fp16 fused graph: not measured, its export failed: {report['fused_error']}"]
    return "\n".join(lines)


def _launch_paragraph(name: str, rows: list[dict]) -> str:
    """One graph's :func:`launch_profile` rows as a sentence per length."""
    parts = []
    for row in rows:
        if "error" in row:
            parts.append(f"not profiled ({row['error']})")
            continue
        top = ", ".join(f"{op} {ms:.2f}" for op, ms in row["top_ops_host_ms"].items())
        parts.append(
            f"{row['length']} tokens: {row['wall_ms']:.2f} ms per run, {row['node_calls']:,.0f} node calls "
            f"({row['node_calls_on_cpu']:,.0f} on the CPU provider) whose host-side time adds up to "
            f"{row['node_host_ms']:.2f} ms ({top})"
        )
    return (
        f"Where batch 1's time goes, {name} (ONNX Runtime's profiler on this provider, plain `run` with "
        "host inputs; a node's time is the host's time inside it, launching asynchronous kernels or "
        "waiting on a copy, so host time close to the wall time means the call is launch-bound): "
        + "; ".join(parts)
        + "."
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", type=Path, default=None, help="HF Longformer dir (default: random base)")
    parser.add_argument("--workdir", type=Path, default=Path("cuda-bench-work"))
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--results", action="store_true", help="write the cuda section of RESULTS.md")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--lengths", type=int, nargs="+", default=list(LENGTHS))
    parser.add_argument("--batches", type=int, nargs="+", default=list(BATCHES))
    parser.add_argument(
        "--device", choices=("cuda", "cpu"), default="cuda", help="cpu: a smoke run of this script"
    )
    parser.add_argument("--from-json", type=Path, default=None, help="only re-render a saved --json report")
    parser.add_argument(
        "--no-fused", action="store_true", help="skip the fp16 graph with ORT's fused LongformerAttention"
    )
    args = parser.parse_args(argv)

    if args.from_json is not None:
        return _emit(json.loads(args.from_json.read_text(encoding="utf-8")), args.results)
    if args.device == "cuda":
        _load_cuda_libraries()
    import onnxruntime as ort
    import torch
    import transformers
    from transformers import LongformerModel

    from longformer2vec.export import export_model, verification_providers
    from longformer2vec.export.synthetic import make_random_longformer
    from longformer2vec.session import OnnxSession

    print("onnxruntime", ort.__version__, ort.get_available_providers(), flush=True)
    args.workdir.mkdir(parents=True, exist_ok=True)
    model_dir = args.model
    if model_dir is None:
        model_dir = make_random_longformer(args.workdir / "random-base-hf", "base")
    start = time.perf_counter()
    fp32_dir = export_model(str(model_dir), args.workdir / "fp32", precision="fp32", global_tokens=False)
    print(f"fp32 export + CPU verification: {time.perf_counter() - start:.0f} s", flush=True)
    start = time.perf_counter()
    fp16_dir = export_model(str(model_dir), args.workdir / "fp16", precision="fp16", global_tokens=False)
    print(
        f"fp16 export + verification on {verification_providers('fp16')[0]}: "
        f"{time.perf_counter() - start:.0f} s",
        flush=True,
    )
    manifest = json.loads((fp16_dir / "manifest.json").read_text())
    (parity_label,) = [k for k in manifest["parity"] if k.startswith("fp16")]
    parity = manifest["parity"][parity_label]
    fused_dir, fused_parity, fused_error = None, None, None
    if not args.no_fused:
        start = time.perf_counter()
        try:  # ORT's LongformerAttention: exported and verified on CUDA like the others, or reported
            fused_dir = export_model(
                str(model_dir),
                args.workdir / "fp16-fused",
                precision="fp16",
                layout="fused",
                global_tokens=False,
            )
        except Exception as exc:  # noqa: BLE001 - a failed fused export is a result to report, not a crash
            fused_error = f"{type(exc).__name__}: {exc}"
            print(f"fused fp16 export failed: {fused_error}", flush=True)
        else:
            fused_manifest = json.loads((fused_dir / "manifest.json").read_text())
            fused_parity = next(v for k, v in fused_manifest["parity"].items() if k.startswith("fp16"))
            print(f"fused fp16 export + verification: {time.perf_counter() - start:.0f} s", flush=True)

    hf_model = LongformerModel.from_pretrained(str(model_dir), add_pooling_layer=False).eval()
    vocab = int(hf_model.config.vocab_size)

    cuda = _providers(args.device)
    graphs = {
        "ours fp32": OnnxSession(fp32_dir / "model.onnx", providers=cuda, use_io_binding=True),
        "ours fp16": OnnxSession(fp16_dir / "model.onnx", providers=cuda, use_io_binding=True),
        "ours fp16, no IO binding": OnnxSession(
            fp16_dir / "model.onnx", providers=cuda, use_io_binding=False
        ),
    }
    if fused_dir is not None:
        graphs["ours fp16 fused"] = OnnxSession(fused_dir / "model.onnx", providers=cuda, use_io_binding=True)
    for name, session in graphs.items():
        assert session.providers == cuda, (name, session.providers)
    graph_dirs = {"ours fp32": fp32_dir, "ours fp16": fp16_dir, "ours fp16 fused": fused_dir}
    placement = {
        name: graph_placement(path / "model.onnx", cuda)
        for name, path in graph_dirs.items()
        if path is not None
    }
    print("placement", placement, flush=True)
    profile_lengths = sorted({min(args.lengths), max(args.lengths)})
    launch = {
        name: [launch_profile(graph_dirs[name] / "model.onnx", cuda, n, vocab) for n in profile_lengths]
        for name in ("ours fp16", "ours fp16 fused")
        if graph_dirs.get(name) is not None
    }
    print("launch profile", json.dumps(launch), flush=True)

    timings: dict[str, dict[str, dict]] = {}
    for batch in args.batches:
        for length in args.lengths:
            shape = f"{batch} x {length}"
            row = {
                "eager fp32": time_eager(
                    hf_model, torch.float32, batch, length, vocab, args.warmup, args.repeats, args.device
                ),
                "eager fp16": time_eager(
                    hf_model, torch.float16, batch, length, vocab, args.warmup, args.repeats, args.device
                ),
            }
            for name, session in graphs.items():
                row[name] = time_graph(session, batch, length, vocab, args.warmup, args.repeats)
            timings[shape] = row
            print(shape, {k: round(v["median_ms"], 2) for k, v in row.items()}, flush=True)

    report = {
        "gpu": torch.cuda.get_device_name(0) if args.device == "cuda" else f"none ({platform.processor()})",
        "model": str(args.model) if args.model else "random weights, longformer-base-4096 geometry",
        "versions": {
            "python": platform.python_version(),
            "onnxruntime": ort.__version__,
            "torch": torch.__version__,
            "transformers": transformers.__version__,
        },
        "warmup": args.warmup,
        "repeats": args.repeats,
        "parity_fp16": parity,
        "parity_source": f"exporter: {parity_label}, reference PyTorch fp32 on the CPU",
        "parity_fp16_fused": fused_parity,
        "fused_error": fused_error,
        "placement": placement,
        "launch_profile": launch,
        "timings": timings,
    }
    if args.json:
        report["json"] = str(args.json)
        args.json.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return _emit(report, args.results)


def _emit(report: dict, write_results: bool) -> int:
    publish("cuda", markdown(report), write_results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
