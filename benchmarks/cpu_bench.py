"""CPU latency, throughput, memory and accuracy: PyTorch eager, the CPU peers a user would pick
instead, and our fp32 and int8 graphs, measured in one run.

    python benchmarks/cpu_bench.py --results     # writes the `targets` and `cpu` sections of RESULTS.md

Without ``--model`` it builds a random model in longformer-base-4096's geometry (timings do not
depend on the weights). Every path runs in its own fresh process, so its peak RSS is its own, on the
same token ids (cut from real-looking text): PyTorch eager fp32 (VectorHub's ``encode``; the
reference for every pooled cosine), eager after ``quantize_dynamic``, HF's model exported with
``torch.onnx.export`` and run in ONNX Runtime, OpenVINO (``convert_model``) and OpenVINO after
``nncf.quantize`` (static int8), and our graphs through the runtime (``longformer2vec export
--precision fp32,int8``, the graphs ``Longformer2Vec()`` runs). HF's ONNX export and OpenVINO's
conversion trace the model at one length and are only valid at it, so they are exported once per
length (worker modules: cpu_workers.py, openvino_peers.py; tables: cpu_report.py).

Latency: batch 1 at each length, median with min and max; the peers at ``--peer-lengths``.
Throughput: a corpus with lengths spread log-uniformly from 50 to 4096 tokens, embedded with
``bulk_encode`` (ours) or one ``encode`` per document (eager, VectorHub's correct path; its
``bulk_encode`` pads every batch to 4096), with the per-document time split by length. All paths use
the same thread count. The machine's load average is recorded: run it on a quiet machine.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from bench_common import loadavg, log_uniform_lengths, machine, token_stream, versions, write_inputs
from cpu_report import cpu_markdown, plot_latency, targets_markdown
from results_file import publish

HERE = Path(__file__).resolve().parent
LENGTHS = (16, 128, 512, 1024, 2048, 4096)  # 16 and 128: sentences, which run unpadded
PEER_LENGTHS = (128, 512, 4096)
OTHERS_LOAD = 1.0  # load average others may add while a timed path runs, before it is run again


def make_corpus(tokenizer_path: Path, docs: int, longest: int = 4096, seed: int = 0) -> list[str]:
    """Texts whose token counts (specials included) spread log-uniformly over [50, longest]."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(tokenizer_path))
    stream = token_stream(tokenizer_path)
    rng = np.random.default_rng(seed)
    texts = []
    for _ in range(docs):
        n = log_uniform_lengths(rng, 1, 50, longest)[0] - 2
        start = int(rng.integers(0, len(stream) - n))
        texts.append(tok.decode(stream[start : start + n]))
    return texts


def wait_for_quiet(max_load: float, max_wait: float) -> float:
    """Wait (up to ``max_wait`` s) until the 1-minute load average is below ``max_load``; returns it.
    Timings taken while other jobs share the cores are slower by an amount no table can undo."""
    deadline = time.monotonic() + max_wait
    while os.getloadavg()[0] >= max_load and time.monotonic() < deadline:
        time.sleep(10)
    return os.getloadavg()[0]


def _run_once(cmd: list[str], timeout: float) -> tuple[subprocess.CompletedProcess | None, list[float]]:
    """Run one worker, sampling the 1-minute load average every 5 s while it runs."""
    samples = [os.getloadavg()[0]]
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as proc:
        deadline = time.monotonic() + timeout
        while True:
            try:
                out, err = proc.communicate(timeout=5)
                break
            except subprocess.TimeoutExpired:
                samples.append(os.getloadavg()[0])
                if time.monotonic() > deadline:
                    proc.kill()
                    proc.communicate()
                    return None, samples
    samples.append(os.getloadavg()[0])
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err), samples


def _run_worker(kind: str, extra: list[str], args: argparse.Namespace, timed: bool = True) -> dict:
    """One worker process. A timed one starts on a quiet machine (``--max-load``) and is run again
    (up to ``--retries`` times) when the load average rose past its own threads plus ``OTHERS_LOAD``
    while it ran: another job shared the cores. The load it ran under is kept in the result."""
    cmd = [sys.executable, __file__, "--worker", kind, *extra]
    for attempt in range(1 + (args.retries if timed else 0)):
        if timed:
            wait_for_quiet(args.max_load, args.max_wait)
        print("  $", " ".join(cmd[1:]), flush=True)
        proc, samples = _run_once(cmd, args.timeout)
        if proc is None:
            return {"error": f"timed out after {args.timeout:.0f} s"}
        if proc.returncode != 0:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
            return {"error": " | ".join(tail)[-300:]}
        result = json.loads(proc.stdout.strip().splitlines()[-1])
        load = {
            "load_start": samples[0],
            "load_max": max(samples),
            "load_end": samples[-1],
            "attempts": attempt + 1,
        }
        if max(samples) <= args.threads + OTHERS_LOAD or not timed:
            break
        print(f"  load rose to {max(samples):.2f} while it ran; again", flush=True)
    return {**result, **load}


def _export_ours(args: argparse.Namespace, model: Path, target: Path) -> None:
    from longformer2vec.contract import is_model_dir, load_model_dir
    from longformer2vec.export import export_model

    if args.reuse_exports and is_model_dir(target):
        manifest = load_model_dir(target, verify_hash=False)
        if all(manifest.find(p, False) for p in ("fp32", "int8")):
            return
    print(f"exporting fp32,int8 -> {target}", flush=True)
    export_model(str(model), target, precision=["fp32", "int8"], global_tokens=False, progress=lambda _: None)


def _parity(target: Path) -> dict:
    """The exporter's own parity figures for the graphs measured here (from the manifest)."""
    from longformer2vec.contract import load_model_dir

    manifest = load_model_dir(target, verify_hash=False)
    int8, fp32 = manifest.find("int8", False), manifest.find("fp32", False)
    int8_rows = [r for k, rows in int8.parity.items() if k.startswith("int8") for r in rows]
    fp32_rows = fp32.parity.get("fp32", [])
    return {
        "int8_pooled_min_cosine": min(r["pooled_min_cosine"] for r in int8_rows),
        "fp32_token_max_abs": max(r["token_max_abs"] for r in fp32_rows),
        "cases": len(fp32_rows),
        "longest": max(max(r["lengths"]) for r in fp32_rows),
    }


def _per_length(args, work, common, kind_export, kind_run, name, lengths, extra=()) -> dict:
    """A path that is traced at each length: export in one process, run in another."""
    out = {}
    for length in lengths:
        print(f"{name} {length}", flush=True)
        graph = work / f"{name}-{length}.{'onnx' if kind_export == 'export-hf' else 'xml'}"
        one = [*common, "--lengths", str(length), "--graph", str(graph)]
        exported = _run_worker(kind_export, ["--model", str(args.model), *one, *extra], args, timed=False)
        if "error" in exported:
            out[str(length)] = exported
            continue
        run = _run_worker(kind_run, one, args)
        out[str(length)] = {**run, "export": exported}
        for leftover in work.glob(f"{name}-{length}.*"):
            leftover.unlink()
    return out


def drive(args: argparse.Namespace) -> int:
    from longformer2vec.export.synthetic import make_random_longformer

    work = args.workdir.resolve()
    work.mkdir(parents=True, exist_ok=True)
    if args.model is None:
        args.model = work / f"random-{args.geometry}-hf"
        if not (args.model / "config.json").exists():
            make_random_longformer(args.model, args.geometry)
    args.model = Path(args.model).resolve()
    config = json.loads((args.model / "config.json").read_text())
    ours = work / "ours"
    _export_ours(args, args.model, ours)
    tokenizer = ours / "tokenizer.json"
    peer_lengths = [n for n in args.peer_lengths if n in args.lengths]
    inputs = work / "inputs.npz"
    write_inputs(inputs, tokenizer, sorted(set(args.lengths)), args.calibration)
    corpus = make_corpus(tokenizer, args.corpus_docs, args.longest_doc)
    corpus_path = work / "corpus.json"
    corpus_path.write_text(json.dumps(corpus))
    from tokenizers import Tokenizer

    counts = [len(e.ids) for e in Tokenizer.from_file(str(tokenizer)).encode_batch(corpus)]

    load_before = loadavg()
    reference = work / "reference.npz"
    reference.unlink(missing_ok=True)
    common = ["--threads", str(args.threads), "--repeats", str(args.repeats)]
    common += ["--inputs", str(inputs), "--reference", str(reference), "--corpus", str(corpus_path)]
    lengths = ["--lengths", *map(str, args.lengths)]
    paths: dict[str, dict] = {}
    print("eager", flush=True)
    paths["eager"] = _run_worker("eager", ["--model", str(args.model), *common, *lengths], args)
    for precision in ("fp32", "int8"):
        print(precision, flush=True)
        extra = ["--graph-dir", str(ours), "--precision", precision]
        paths[precision] = _run_worker("graph", [*extra, *common, *lengths], args)
    if peer_lengths and not args.skip_peers:
        print("eager-int8", flush=True)
        extra = ["--model", str(args.model), *common, "--lengths", *map(str, peer_lengths)]
        paths["eager-int8"] = _run_worker("eager-int8", extra, args)
        paths["openvino"] = _per_length(
            args, work, common, "export-openvino", "openvino", "openvino", peer_lengths
        )
        paths["openvino-int8"] = _per_length(
            args, work, common, "export-openvino", "openvino", "openvino-int8", peer_lengths, ["--quantize"]
        )
    traced_lengths = [] if args.skip_hf_traced else args.lengths
    paths["hf-traced"] = _per_length(
        args, work, common, "export-hf", "hf-traced", "hf-traced", traced_lengths
    )

    window = config["attention_window"]
    report = {
        "command": ("python benchmarks/cpu_bench.py " + " ".join(args.argv)).strip(),
        "machine": machine(),
        "threads": args.threads,
        "load_before": load_before,
        "load_after": loadavg(),
        "versions": versions(),
        "model": str(args.model) if args.model_given else f"random weights, {args.geometry} geometry",
        "lengths": list(args.lengths),
        "peer_lengths": peer_lengths,
        "eager_pad_multiple": max(window) if isinstance(window, list) else window,
        "parity": _parity(ours),
        "corpus": {
            "docs": len(corpus),
            "tokens": sum(counts),
            "median_tokens": int(np.median(counts)),
            "longest": args.longest_doc,
            "token_counts": counts,
        },
        "paths": paths,
    }
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return publish_report(report, args)


def publish_report(report: dict, args: argparse.Namespace) -> int:
    """Plot and tables of one run's report; with ``--results``, into RESULTS.md."""
    plot_name = None
    if args.plot:
        plot_latency(report, args.plot)
        plot_name = os.path.relpath(args.plot.resolve(), HERE)
    command = report["command"]
    publish("targets", targets_markdown(report, command), args.results)
    publish("cpu", cpu_markdown(report, command, plot_name), args.results)
    return 0


def _workers() -> dict:
    from cpu_workers import WORKERS
    from openvino_peers import WORKERS as OPENVINO_WORKERS

    return {**WORKERS, **OPENVINO_WORKERS}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--model", type=Path, default=None, help="HF Longformer dir (default: random weights)"
    )
    parser.add_argument(
        "--geometry", default="base", help="random model's geometry without --model (small: quick runs)"
    )
    parser.add_argument("--workdir", type=Path, default=Path("cpu-bench-work"))
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--lengths", type=int, nargs="+", default=list(LENGTHS))
    parser.add_argument(
        "--peer-lengths",
        type=int,
        nargs="+",
        default=list(PEER_LENGTHS),
        help="of --lengths, where peers run",
    )
    parser.add_argument(
        "--repeats", type=int, default=5, help="timed runs at <=1024 tokens (half above, min 3)"
    )
    parser.add_argument("--calibration", type=int, default=8, help="nncf.quantize samples per length")
    parser.add_argument("--corpus-docs", type=int, default=32)
    parser.add_argument(
        "--longest-doc", type=int, default=4096, help="corpus lengths: 50 to this many tokens"
    )
    parser.add_argument("--skip-hf-traced", action="store_true")
    parser.add_argument("--skip-peers", action="store_true", help="no quantize_dynamic / OpenVINO paths")
    parser.add_argument(
        "--reuse-exports", action="store_true", help="keep our fp32+int8 export in --workdir when it is there"
    )
    parser.add_argument("--timeout", type=float, default=3600, help="seconds per worker process")
    parser.add_argument(
        "--max-load", type=float, default=1.5, help="start each timed path below this 1-minute load average"
    )
    parser.add_argument("--max-wait", type=float, default=900, help="seconds to wait for that, per path")
    parser.add_argument(
        "--retries", type=int, default=2, help="reruns of a path during which other jobs loaded the machine"
    )
    parser.add_argument("--json", type=Path, default=HERE / "data" / "cpu.json")
    parser.add_argument("--plot", type=Path, default=HERE / "cpu_latency.png")
    parser.add_argument(
        "--results", action="store_true", help="write the targets and cpu sections of RESULTS.md"
    )
    parser.add_argument(
        "--from-json", type=Path, help="measure nothing: redraw the tables and plot of a saved report"
    )
    # internal: one measured path per process
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    for hidden in ("--graph-dir", "--graph", "--corpus", "--inputs", "--reference", "--precision"):
        parser.add_argument(hidden, help=argparse.SUPPRESS)
    parser.add_argument("--quantize", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.model_given = args.model is not None
    args.argv = argv
    if args.worker:
        print(json.dumps(_workers()[args.worker](args)))
        return 0
    if args.from_json:
        return publish_report(json.loads(args.from_json.read_text()), args)
    return drive(args)


if __name__ == "__main__":
    raise SystemExit(main())
