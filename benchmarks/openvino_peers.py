"""cpu_bench's OpenVINO peers, one per process: what a CPU user picks when ONNX Runtime is not it.

* ``export-openvino``: HF's ``LongformerModel`` traced by ``ov.convert_model`` at one length (static
  ``[1, L]`` inputs) and saved as OpenVINO IR; with ``--quantize``, first ``nncf.quantize``d (static
  int8, ``ModelType.TRANSFORMER`` preset) on ``--calibration`` real-looking sequences of that length,
  none of them the compared input. Like HF's ONNX export the traced graph is only valid at its traced
  length (Longformer's chunking is fixed at trace time), so a user needs one IR per length.
* ``openvino``: the IR read and compiled for ``CPU`` with OpenVINO's defaults (only the thread count
  set, to match the other paths), timed at its length; its pooled cosine is against eager fp32.

Needs the ``bench`` extra (``openvino``, ``nncf``).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from bench_common import load_inputs, load_reference, masked_mean, report, rss_mb, time_at


def export_openvino(args: argparse.Namespace) -> dict:
    """Convert (and with ``--quantize`` quantize) HF's model at one length; save IR to ``--graph``."""
    import openvino as ov
    import torch
    from transformers import LongformerModel

    torch.set_num_threads(args.threads)
    hf = LongformerModel.from_pretrained(args.model, add_pooling_layer=False).eval()

    class Hidden(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = hf

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            return self.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state

    (length,) = args.lengths
    inputs = load_inputs(args.inputs)
    ids = torch.from_numpy(inputs[f"test_{length}"])
    start = time.perf_counter()
    with torch.no_grad():
        model = ov.convert_model(
            Hidden().eval(),
            example_input=(ids, torch.ones_like(ids)),
            input=[([1, length], ov.Type.i64), ([1, length], ov.Type.i64)],
        )
    convert_s = time.perf_counter() - start
    out = {"convert_s": convert_s, "nodes": len(model.get_ops())}
    if args.quantize:
        import nncf

        calibration = [(row[None, :], np.ones_like(row[None, :])) for row in inputs[f"calib_{length}"]]
        start = time.perf_counter()
        model = nncf.quantize(
            model,
            nncf.Dataset(calibration),
            model_type=nncf.ModelType.TRANSFORMER,
            subset_size=len(calibration),
        )
        out.update(quantize_s=time.perf_counter() - start, calibration_samples=len(calibration))
    ov.save_model(model, args.graph, compress_to_fp16=False)
    return out


def worker_openvino(args: argparse.Namespace) -> dict:
    """Read one length's IR, compile it for the CPU, time it at that length."""
    import openvino as ov

    start = time.perf_counter()
    core = ov.Core()
    compiled = core.compile_model(core.read_model(args.graph), "CPU", {"INFERENCE_NUM_THREADS": args.threads})
    startup = time.perf_counter() - start
    (length,) = args.lengths
    ids = load_inputs(args.inputs)[f"test_{length}"]
    mask = np.ones_like(ids)
    request = compiled.create_infer_request()

    def run() -> np.ndarray:
        return masked_mean(request.infer([ids, mask])[0], mask)

    latency = {length: time_at(run, length, args.repeats)}
    vectors = {length: run()[0]}
    settings = {
        name: _plain(compiled.get_property(name))
        for name in ("INFERENCE_PRECISION_HINT", "PERFORMANCE_HINT", "NUM_STREAMS", "INFERENCE_NUM_THREADS")
    }
    return report(startup, latency, rss_mb(), vectors, load_reference(args.reference), settings=settings)


def _plain(value: object) -> str:
    """``bf16`` rather than ``<Type: 'bfloat16'>`` for element types; other properties as they print."""
    name = getattr(value, "get_type_name", None)
    return name() if callable(name) else str(value)


WORKERS = {"export-openvino": export_openvino, "openvino": worker_openvino}
