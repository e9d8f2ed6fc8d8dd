"""cpu_bench's measured paths that run on PyTorch or ONNX Runtime, one per process (the driver starts
each with ``cpu_bench.py --worker NAME``; a worker prints one JSON line).

* ``eager``: HF ``LongformerModel`` fp32 forward + masked mean (VectorHub's ``encode``); writes the
  reference vectors every other path is compared with, and its per-document corpus times.
* ``eager-int8``: the same model after ``torch.ao.quantization.quantize_dynamic`` (int8 ``Linear``),
  quantized in the process as a user does it (the process's peak RSS includes the fp32 load).
* ``graph``: our exported graph through ``Longformer2Vec`` (latency through its session, then
  ``bulk_encode`` of the corpus, then each document alone: the vector must not depend on the batch).
* ``export-hf`` / ``hf-traced``: HF's model through ``torch.onnx.export`` at one length, run at it.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from bench_common import cosine, load_inputs, load_reference, masked_mean, report, rss_mb, time_at, timed

# A text's vector alone and in bulk_encode must agree this closely (the batch-invariance rule).
BATCH_INVARIANCE_ATOL = 1e-5


def _hf_model(args: argparse.Namespace):
    import torch
    from transformers import LongformerModel

    torch.set_num_threads(args.threads)
    return LongformerModel.from_pretrained(args.model, add_pooling_layer=False).eval()


def _eager_latency(model, args: argparse.Namespace) -> tuple[dict, dict]:
    import torch

    inputs = load_inputs(args.inputs)
    latency, vectors = {}, {}
    for length in args.lengths:
        ids = torch.from_numpy(inputs[f"test_{length}"])

        def run(ids=ids) -> np.ndarray:
            with torch.no_grad():
                return model(input_ids=ids).last_hidden_state.mean(dim=1).numpy()

        latency[length] = time_at(run, length, args.repeats)
        vectors[length] = run()[0]
    return latency, vectors


def worker_eager(args: argparse.Namespace) -> dict:
    """fp32 eager: latency, reference vectors, then one ``encode`` per corpus document."""
    import torch
    from transformers import AutoTokenizer

    start = time.perf_counter()
    model = _hf_model(args)
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    startup = time.perf_counter() - start
    latency, vectors = _eager_latency(model, args)
    rss_latency = rss_mb()
    corpus = json.loads(Path(args.corpus).read_text())
    doc_seconds, doc_vectors, tokens = [], [], 0

    def encode(text: str) -> tuple[np.ndarray, int]:
        ids = torch.tensor([tokenizer(text)["input_ids"]], dtype=torch.long)
        with torch.no_grad():
            return model(input_ids=ids).last_hidden_state.mean(dim=1).numpy()[0], ids.shape[1]

    for text in corpus:
        begin = time.perf_counter()
        vector, n = encode(text)
        doc_seconds.append(time.perf_counter() - begin)
        doc_vectors.append(vector)
        tokens += n
    reference = {f"pooled_{n}": v for n, v in vectors.items()}
    np.savez(args.reference, corpus=np.stack(doc_vectors), **reference)
    bulk = {"docs": len(corpus), "tokens": tokens, "seconds": sum(doc_seconds), "doc_seconds": doc_seconds}
    return report(startup, latency, rss_latency, vectors, load_reference(args.reference), bulk=bulk)


def worker_eager_int8(args: argparse.Namespace) -> dict:
    """Eager after PyTorch's dynamic int8 quantization of every ``nn.Linear`` (weights int8 per
    tensor, activations quantized per call): the int8 route a PyTorch user tries first."""
    import gc

    import torch
    from torch.ao.quantization import quantize_dynamic

    start = time.perf_counter()
    fp32 = _hf_model(args)
    model = quantize_dynamic(fp32, {torch.nn.Linear}, dtype=torch.qint8)
    del fp32
    gc.collect()
    startup = time.perf_counter() - start
    latency, vectors = _eager_latency(model, args)
    engine = torch.backends.quantized.engine
    return report(startup, latency, rss_mb(), vectors, load_reference(args.reference), engine=engine)


def worker_graph(args: argparse.Namespace) -> dict:
    """Our graph: batch-1 latency through the runtime's session, then the corpus."""
    from longformer2vec import Longformer2Vec

    start = time.perf_counter()
    model = Longformer2Vec(args.graph_dir, precision=args.precision, intra_op_num_threads=args.threads)
    startup = time.perf_counter() - start
    session = model._session
    inputs = load_inputs(args.inputs)
    latency, vectors = {}, {}
    for length in args.lengths:
        ids = inputs[f"test_{length}"]
        mask, glob = np.ones_like(ids), np.zeros_like(ids)

        def run(ids=ids, mask=mask, glob=glob) -> np.ndarray:
            return session.run(ids, mask, glob, need_hidden=False)[1]

        latency[length] = time_at(run, length, args.repeats)
        vectors[length] = run()[0]
    rss_latency = rss_mb()
    corpus = json.loads(Path(args.corpus).read_text())
    tokens = sum(len(e.ids) for e in model.tokenizer.encode_batch(corpus))
    start = time.perf_counter()
    bulk_vectors = model.encode_numpy(corpus)
    seconds = time.perf_counter() - start
    rss_bulk = rss_mb()
    # Each document alone: its time (the per-length split against eager) and its vector, which must
    # equal its vector from bulk_encode (a text's vector never depends on the other texts of a call).
    doc_seconds, alone = [], []
    for text in corpus:
        doc_seconds.append(timed(lambda t=text: alone.append(model.encode_numpy([t])[0])))
    diff = float(np.abs(np.stack(alone) - bulk_vectors).max())
    if diff > BATCH_INVARIANCE_ATOL:
        raise AssertionError(
            f"{model.graph.name}: a document's vector alone differs from its bulk_encode vector by "
            f"{diff:.2e} (> {BATCH_INVARIANCE_ATOL:.0e})"
        )
    reference = load_reference(args.reference)
    corpus_cos = []
    if "corpus" in reference:
        ref = reference["corpus"]
        corpus_cos = [cosine(a, b) for a, b in zip(bulk_vectors, ref, strict=True)]
    bulk = {
        "docs": len(corpus),
        "tokens": tokens,
        "seconds": seconds,
        "doc_seconds": doc_seconds,
        "alone_vs_bulk_max_abs": diff,
        "pooled_cosine_min": min(corpus_cos) if corpus_cos else None,
        "peak_rss_mb": rss_bulk,
        "max_batch_tokens": model.max_batch_tokens,
        "pad_multiple": model.graph.pad_multiple,
    }
    return report(startup, latency, rss_latency, vectors, reference, bulk=bulk, graph=model.graph.file)


def export_hf_traced(args: argparse.Namespace) -> dict:
    """HF's own model through torch.onnx.export (TorchScript), traced at one length."""
    import onnx
    import torch

    model = _hf_model(args)
    (length,) = args.lengths
    ids = torch.from_numpy(load_inputs(args.inputs)[f"test_{length}"])
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
    nodes = len(onnx.load(args.graph, load_external_data=False).graph.node)
    return {"export_s": seconds, "nodes": nodes}


def worker_hf_traced(args: argparse.Namespace) -> dict:
    """Load HF's graph traced at one length and time it at that length (no corpus: fixed length)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = args.threads
    start = time.perf_counter()
    session = ort.InferenceSession(args.graph, options, providers=["CPUExecutionProvider"])
    startup = time.perf_counter() - start
    (length,) = args.lengths
    ids = load_inputs(args.inputs)[f"test_{length}"]
    mask = np.ones_like(ids)
    feeds = {"input_ids": ids, "attention_mask": mask}

    def run() -> np.ndarray:
        return masked_mean(session.run(None, feeds)[0], mask)

    latency = {length: time_at(run, length, args.repeats)}
    vectors = {length: run()[0]}
    return report(startup, latency, rss_mb(), vectors, load_reference(args.reference))


WORKERS = {
    "eager": worker_eager,
    "eager-int8": worker_eager_int8,
    "graph": worker_graph,
    "export-hf": export_hf_traced,
    "hf-traced": worker_hf_traced,
}
