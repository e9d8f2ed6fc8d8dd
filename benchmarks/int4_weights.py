"""4-bit weights for small machines: ONNX Runtime's MatMulNBits (block 32/64/128, activations quantized
per block at run time with ``accuracy_level=4``) against the per-token int8 graph (and ONNX Runtime's
per-call dynamic int8): file size, batch-1 speed, and the export's ranking figures.

    pip install onnx-ir   # ONNX Runtime's MatMulNBits quantizer needs it
    python benchmarks/int4_weights.py MODEL_DIR [--blocks 32,64,128] [--passes 5] [--results]

MODEL_DIR is an export with fp32 and int8 graphs. The reference vectors are the fp32 graph's (which
the exporter holds to 1e-3 of PyTorch per token), so no PyTorch is needed; the thresholds are the
export's (:data:`longformer2vec.export.ranking.RANKING_THRESHOLDS`), on its 27 ranking texts without
global attention, one text per call, plus the plain pooled cosine on the same texts.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
from bench_common import loadavg, machine
from results_file import publish
from tokenizers import Tokenizer

from longformer2vec.export.ranking import (
    RANKING_THRESHOLDS,
    RankingSet,
    graph_vectors,
    rank_graph,
    text_ids,
)

LENGTHS = (128, 512)


def nbits_graph(fp32: Path, out: Path, block: int) -> Path:
    """Every linear layer (MatMul with a constant weight) as 4-bit MatMulNBits, symmetric blocks."""
    import logging

    import onnx
    from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer

    logging.getLogger("onnxruntime.quantization.matmul_nbits_quantizer").setLevel(logging.WARNING)

    quantizer = MatMulNBitsQuantizer(
        onnx.load(str(fp32)), bits=4, block_size=block, is_symmetric=True, accuracy_level=4
    )
    quantizer.process()
    quantizer.model.save_model_to_file(str(out), use_external_data_format=False)
    return out


def session(path: Path, threads: int) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def feeds(tokens: int) -> dict[str, np.ndarray]:
    ids = np.random.default_rng(tokens).integers(5, 300, (1, tokens)).astype(np.int64)
    ids[0, 0], ids[0, -1] = 0, 2
    return {"input_ids": ids, "attention_mask": np.ones_like(ids)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model_dir", type=Path)
    parser.add_argument("--blocks", default="32,64,128")
    parser.add_argument("--passes", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--results", action="store_true", help="write the int4-weights section of RESULTS.md")
    args = parser.parse_args()
    manifest = json.loads((args.model_dir / "manifest.json").read_text())
    backend = Tokenizer.from_file(str(args.model_dir / "tokenizer.json"))
    rows = text_ids(backend, int(manifest["max_length"]), backend.get_vocab_size())
    fp32_path = args.model_dir / "onnx" / "model.onnx"
    int8_path = args.model_dir / "onnx" / "model_int8.onnx"
    load_start = loadavg()
    reference = graph_vectors(RankingSet(False, rows, np.zeros(0)), session(fp32_path, args.threads))
    ranking_set = RankingSet(False, rows, reference.astype(np.float64))
    with tempfile.TemporaryDirectory() as tmp:
        from longformer2vec.export.convert import Int8Recipe, quantize_int8

        per_call = Path(tmp) / "per-call.onnx"
        quantize_int8(fp32_path, per_call, Int8Recipe("all-linear", activations="per-tensor"))
        paths = {"int8 per-token": int8_path, "int8 per-call (one row per call)": per_call}
        for block in (int(b) for b in args.blocks.split(",")):
            print(f"quantizing to 4 bits, block {block}", flush=True)
            paths[f"4-bit, block {block}"] = nbits_graph(fp32_path, Path(tmp) / f"nbits{block}.onnx", block)
        sessions = {name: session(path, args.threads) for name, path in paths.items()}
        figures = {name: rank_graph([ranking_set], s)[0] for name, s in sessions.items()}
        times: dict[str, dict[int, float]] = {name: {} for name in sessions}
        for tokens in LENGTHS:
            feed = feeds(tokens)
            samples: dict[str, list[float]] = {name: [] for name in sessions}
            for s in sessions.values():
                s.run(None, feed)
            for _ in range(args.passes):
                for name, s in sessions.items():
                    start = time.perf_counter()
                    s.run(None, feed)
                    samples[name].append(time.perf_counter() - start)
            for name in sessions:
                times[name][tokens] = float(np.median(samples[name]))
        sizes = {name: path.stat().st_size / 2**20 for name, path in paths.items()}
    floors = ", ".join(f"{k} >= {v}" for k, v in RANKING_THRESHOLDS.items())
    lines = [
        "## 4-bit weights (`python benchmarks/int4_weights.py MODEL_DIR --results`)",
        "",
        (
            f"{machine()}, {args.threads} threads, load average {load_start} at the start and {loadavg()} at "
            f"the end; batch 1, medians of {args.passes} alternating runs. Reference: the fp32 graph's vectors "
            f"of the export's 27 ranking texts (no global attention). The export's floors: {floors}."
        ),
        "",
        (
            "| graph | file MB | 128 tokens ms | 512 tokens ms | plain min cosine | centered median | spearman "
            "| top-1 | top-5 | passes the floors |"
        ),
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, f in figures.items():
        passes = all(getattr(f, key) >= floor for key, floor in RANKING_THRESHOLDS.items())
        lines.append(
            f"| {name} | {sizes[name]:.0f} | {times[name][128] * 1e3:.1f} | {times[name][512] * 1e3:.1f} | "
            f"{f.plain_min_cosine:.5f} | {f.centered_median_cosine:.4f} | {f.spearman:.4f} | "
            f"{f.top1_agreement:.2f} | {f.top5_agreement:.2f} | {'yes' if passes else 'no'} |"
        )
    publish("int4-weights", "\n".join(lines), args.results)


if __name__ == "__main__":
    main()
