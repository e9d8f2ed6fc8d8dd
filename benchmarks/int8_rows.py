"""The default int8 graph (per-token activation scales on inputs up to 128 tokens wide, so short rows
batch with every vector independent of its neighbours; ONNX Runtime's per-call scale above) against
int8 with one scale per call at every width (run one row per call), side by side in one process, the
modes alternating.

    python benchmarks/int8_rows.py MODEL_DIR [--corpus CORPUS_JSON] [--passes 5] [--results]

MODEL_DIR is an export with fp32 and int8 graphs (``longformer2vec export ... --precision fp32,int8``);
its int8 graph must batch its rows (``--int8-activations by-length``, the default, or ``per-token``).
The per-call twin is quantized from MODEL_DIR's fp32 graph into a scratch directory (the other files
are linked). CORPUS_JSON is a JSON list of documents (default: 32 documents of 50-4,096 tokens built
like ``cpu_bench.py``'s).

Sentences are 64 spans of 15-31 tokens (specials included) cut from the corpus's token stream: what
RoBERTa's BPE (GPT-2's byte-level BPE; Longformer's tokenizer) makes of 12-20 English words. Spans are
cut by tokens rather than words because the test models' tokenizers are trained on a small corpus
with a few hundred symbols and split a word into about three tokens, which would make "short"
sentences 40-80 tokens long. Measured:

* sentences: the per-call graph one row per call (today's int8 rule), the default graph one row per
  call, the default graph in batches of 16; and the largest difference between a sentence's vector
  alone and in its batch;
* batch 1 at 128, 512 and 4,096 tokens: both graphs, one text per call;
* documents: the corpus in the runtime's default calls, both graphs.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from bench_common import loadavg, machine
from results_file import publish

from longformer2vec import Longformer2Vec, batching

SENTENCE_BATCH = 16
LENGTHS = (128, 512, 4096)


SENTENCE_TOKENS = (15, 31)  # RoBERTa's BPE on 12-20 English words, specials included


def sentences_from(model: Longformer2Vec, documents: list[str], count: int = 64) -> list[str]:
    """``count`` spans of the corpus, their token counts (specials included) cycling over
    :data:`SENTENCE_TOKENS`."""
    stream = model.tokenizer.encode(" ".join(documents), add_special_tokens=False).ids
    low, high = SENTENCE_TOKENS
    sentences, start = [], 0
    for i in range(count):
        content = low + (i * 7) % (high - low + 1) - 2
        sentences.append(model.tokenizer.decode(stream[start : start + content]).strip())
        start += content + 11
    return sentences


def per_call_twin(model_dir: Path, work: Path) -> Path:
    """``model_dir`` with its int8 graph replaced by ONNX Runtime's dynamic (per-call) quantization."""
    from longformer2vec.contract import sha256_file
    from longformer2vec.export.convert import Int8Recipe, quantize_int8

    twin = work / "per-call"
    (twin / "onnx").mkdir(parents=True)
    for item in model_dir.iterdir():
        if item.name not in ("onnx", "manifest.json"):
            (twin / item.name).symlink_to(item.resolve())
    for item in (model_dir / "onnx").iterdir():
        if item.name != "model_int8.onnx":
            (twin / "onnx" / item.name).symlink_to(item.resolve())
    recipe = Int8Recipe("all-linear", activations="per-tensor")
    quantize_int8(model_dir / "onnx" / "model.onnx", twin / "onnx" / "model_int8.onnx", recipe)
    manifest = json.loads((model_dir / "manifest.json").read_text())
    for graph in manifest["graphs"]:
        if graph["precision"] == "int8" and not graph["global_tokens"]:
            graph["sha256"] = sha256_file(twin / "onnx" / "model_int8.onnx")
            graph["quantization"] = {
                **recipe.as_dict(),
                "activations": "u8, dynamic, per tensor",
                "batch_independent": False,
            }
    (twin / "manifest.json").write_text(json.dumps(manifest))
    return twin


def alternate(modes: dict, passes: int) -> dict[str, float]:
    """Median seconds of each mode's callable, the modes alternating ``passes`` times."""
    times: dict[str, list[float]] = {name: [] for name in modes}
    for fn in modes.values():
        fn()  # warm-up
    for _ in range(passes):
        for name, fn in modes.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: float(np.median(ts)) for name, ts in times.items()}


def text_of(model: Longformer2Vec, documents: list[str], tokens: int) -> str:
    """A text of exactly ``tokens`` tokens (specials included), cut from the corpus."""
    ids = model.tokenizer.encode(" ".join(documents), add_special_tokens=False).ids
    ids = (ids * (tokens // max(1, len(ids)) + 2))[: tokens - 2]
    text = model.tokenizer.decode(ids)
    while len(model.tokenizer.encode(text).ids) > tokens:
        text = text[: int(len(text) * 0.99)]
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model_dir", type=Path)
    parser.add_argument(
        "--corpus", type=Path, help="JSON list of documents (default: built like cpu_bench's)"
    )
    parser.add_argument("--passes", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--skip-documents", action="store_true", help="sentences and batch 1 only")
    parser.add_argument("--documents-only", action="store_true", help="the documents comparison only")
    parser.add_argument("--docs", type=int, default=32, help="documents in the built corpus")
    parser.add_argument("--longest", type=int, default=4096, help="built corpus: 50 to this many tokens")
    parser.add_argument("--seed", type=int, default=0, help="built corpus seed")
    parser.add_argument("--results", action="store_true", help="write the int8-rows section of RESULTS.md")
    args = parser.parse_args()
    if args.corpus:
        documents = json.loads(args.corpus.read_text(encoding="utf-8"))
    else:
        from cpu_bench import make_corpus

        documents = make_corpus(args.model_dir / "tokenizer.json", args.docs, args.longest, args.seed)
    load_start = loadavg()
    with tempfile.TemporaryDirectory() as tmp:
        twin = per_call_twin(args.model_dir, Path(tmp))
        options = {"precision": "int8", "intra_op_num_threads": args.threads}
        default = Longformer2Vec(args.model_dir, **options)
        call = Longformer2Vec(twin, **options)
        if default.graph.batch_independent_width == 0:
            raise SystemExit(f"{args.model_dir}: its int8 graph scales once per call; export it by length")
        rows = measure(default, call, documents, args)
    load_end = loadavg()
    title = (
        "## int8 rows: the default int8 (per-token scales up to 128 tokens, batched) against per-call scales "
        "one row per call "
        f"(`python benchmarks/int8_rows.py MODEL_DIR {' '.join(sys.argv[2:])}`)"
    )
    conditions = (
        f"{machine()}, {args.threads} thread{'s' if args.threads > 1 else ''}, load average {load_start} at the start and {load_end} at the "
        f"end (other jobs share the cores); medians of {args.passes} passes, the modes alternating in one "
        "process. `per-call`: ONNX Runtime's dynamic quantization at every width (one activation scale per call), "
        "which the runtime runs one row per call; `default`: the export's default int8 (one scale per token on "
        "inputs up to 128 tokens wide, whose rows the runtime batches; per call above, one row per call)."
    )
    body = "\n".join([title, "", conditions, "", *rows])
    publish("int8-rows", body, args.results)


def measure(default: Longformer2Vec, call: Longformer2Vec, documents: list[str], args) -> list[str]:
    out = [] if args.documents_only else measure_short(default, call, documents, args)
    if not args.skip_documents:
        modes = {
            "per-call, one row per call": lambda: call.encode_numpy(documents),
            "default, the runtime's default calls": lambda: default.encode_numpy(documents),
        }
        times = alternate(modes, max(1, args.passes // 2))
        tokens = sum(len(e.ids) for e in default.tokenizer.encode_batch(documents))
        out += [
            "",
            f"Documents: {len(documents)} texts, {tokens:,} tokens, seconds per pass:",
            "",
            "| mode | seconds | against per-call |",
            "|---|---|---|",
            *(
                f"| {name} | {t:.2f} | {t / times['per-call, one row per call']:.2f} |"
                for name, t in times.items()
            ),
        ]
        print("\n".join(out[-6:]), flush=True)
    return out


def measure_short(default: Longformer2Vec, call: Longformer2Vec, documents: list[str], args) -> list[str]:
    sentences = sentences_from(default, documents)
    counts = [len(e.ids) for e in default.tokenizer.encode_batch(sentences)]
    n = len(sentences)
    modes = {
        "per-call, one row per call": lambda: call.encode_numpy(sentences, batch_size=SENTENCE_BATCH),
        "default, one row per call": lambda: default.encode_numpy(sentences, batch_size=1),
        f"default, batches of {SENTENCE_BATCH}": lambda: default.encode_numpy(
            sentences, batch_size=SENTENCE_BATCH
        ),
    }
    seconds = alternate(modes, args.passes)
    alone = np.stack([default.encode_numpy([s])[0] for s in sentences])
    batched = default.encode_numpy(sentences, batch_size=SENTENCE_BATCH)
    worst = float(np.abs(alone - batched).max())
    call_alone = np.stack([call.encode_numpy([s])[0] for s in sentences])
    rule = batching.max_rows_per_call
    try:  # what the runtime's one-row rule prevents
        batching.max_rows_per_call = lambda graph, batch_size: batch_size
        call_batched = call.encode_numpy(sentences, batch_size=SENTENCE_BATCH)
    finally:
        batching.max_rows_per_call = rule
    call_worst = float(np.abs(call_alone - call_batched).max())
    cos = float(
        np.min(np.sum(alone * batched, 1) / np.linalg.norm(alone, axis=1) / np.linalg.norm(batched, axis=1))
    )
    base = seconds["per-call, one row per call"]
    own = seconds["default, one row per call"]
    out = [
        (
            f"{n} sentences of {min(counts)}-{max(counts)} tokens, mean {np.mean(counts):.1f} "
            f"({SENTENCE_BATCH} per batch):"
        ),
        "",
        "| mode | sentences/s | against per-call one row per call | against default one row per call |",
        "|---|---|---|---|",
        *(f"| {name} | {n / s:.1f} | {base / s:.2f}x | {own / s:.2f}x |" for name, s in seconds.items()),
        "",
        (
            f"Default int8, every sentence alone against in its batch of {SENTENCE_BATCH}: max abs difference "
            f"{worst:.2e}, min cosine {cos:.8f}. The per-call graph, were it given the same batches: "
            f"{call_worst:.2e}."
        ),
        "",
    ]
    print("\n".join(out), flush=True)
    out += [
        "Batch 1 (one text per call), ms:",
        "",
        "| tokens | per-call | default | default / per-call |",
    ]
    out.append("|---|---|---|---|")
    for tokens in LENGTHS:
        text = [text_of(default, documents, tokens)]
        times = alternate(
            {"call": lambda t=text: call.encode_numpy(t), "default": lambda t=text: default.encode_numpy(t)},
            args.passes,
        )
        out.append(
            f"| {tokens} | {times['call'] * 1e3:.1f} | {times['default'] * 1e3:.1f} | "
            f"{times['default'] / times['call']:.2f} |"
        )
        print(out[-1], flush=True)
    return out


if __name__ == "__main__":
    main()
