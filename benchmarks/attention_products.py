"""fp32 against int8 for the two attention products, at the shapes one head of one layer runs.

    python benchmarks/attention_products.py --results     # writes the attention-int8 section

The CPU graph computes, per head and layer, ``S = Q_b @ K_b^T`` ([n, s, d] x [n, d, C]) and
``O = P @ V_b`` ([n, s, C] x [n, C, d]) over ``n = L / s`` query blocks (longformer-base: s = 128,
C = 640, d = 64). This script times each product in ONNX Runtime as it runs now (fp32 MatMul) and
as the int8 alternative would (DynamicQuantizeLinear of both operands + MatMulInteger + scale, or
the fused MatMulIntegerToFloat contrib op), median of ``--runs`` after warm-up runs, and reports the
error int8 adds. Q and K are random normal; P is a softmax of random normal scores (rows sum to 1,
as after the mask), so its quantization error is the one the model would see.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time

import numpy as np
from results_file import cpu_model, publish  # benchmarks/ is on sys.path: scripts run from there


def _session(nodes, inputs: dict[str, tuple[int, ...]], threads: int):
    import onnxruntime as ort
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        nodes,
        "product",
        [
            helper.make_tensor_value_info(name, TensorProto.FLOAT, list(shape))
            for name, shape in inputs.items()
        ],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)]
    )
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


def variants(inputs: dict[str, tuple[int, ...]], threads: int) -> dict[str, object]:
    """The fp32 product and its two int8 forms, all computing ``y = a @ b``."""
    from onnx import TensorProto, helper

    quantize = [
        helper.make_node("DynamicQuantizeLinear", ["a"], ["a8", "a_scale", "a_zero"]),
        helper.make_node("DynamicQuantizeLinear", ["b"], ["b8", "b_scale", "b_zero"]),
    ]
    return {
        "fp32 MatMul": _session([helper.make_node("MatMul", ["a", "b"], ["y"])], inputs, threads),
        "int8 MatMulInteger": _session(
            [
                *quantize,
                helper.make_node("MatMulInteger", ["a8", "b8", "a_zero", "b_zero"], ["y32"]),
                helper.make_node("Cast", ["y32"], ["yf"], to=TensorProto.FLOAT),
                helper.make_node("Mul", ["a_scale", "b_scale"], ["scale"]),
                helper.make_node("Mul", ["yf", "scale"], ["y"]),
            ],
            inputs,
            threads,
        ),
        "int8 MatMulIntegerToFloat": _session(
            [
                *quantize,
                helper.make_node(
                    "MatMulIntegerToFloat",
                    ["a8", "b8", "a_scale", "b_scale", "a_zero", "b_zero"],
                    ["y"],
                    domain="com.microsoft",
                ),
            ],
            inputs,
            threads,
        ),
    }


def measure(feeds: dict[str, np.ndarray], threads: int, runs: int) -> list[tuple[str, float, float, float]]:
    """(variant, median ms, min ms, max |error| relative to max |fp32 result|) per variant."""
    sessions = variants({name: array.shape for name, array in feeds.items()}, threads)
    reference = None
    rows = []
    for name, session in sessions.items():
        result = session.run(None, feeds)[0]
        reference = result if reference is None else reference
        for _ in range(5):  # warm-up: thread pool and allocations
            session.run(None, feeds)
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            session.run(None, feeds)
            times.append((time.perf_counter() - start) * 1000)
        error = float(np.abs(result - reference).max() / np.abs(reference).max())
        rows.append((name, statistics.median(times), min(times), error))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tokens", type=int, default=4096)
    parser.add_argument("--block", type=int, default=128, help="queries per block (s)")
    parser.add_argument("--keys", type=int, default=640, help="keys per block (C = s + 2w)")
    parser.add_argument("--head-dim", type=int, default=64)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument(
        "--results", action="store_true", help="write the attention-int8 section of RESULTS.md"
    )
    args = parser.parse_args(argv)

    blocks, s, c, d = args.tokens // args.block, args.block, args.keys, args.head_dim
    rng = np.random.default_rng(0)
    scores = rng.standard_normal((blocks, s, c)).astype(np.float32)
    probs = np.exp(scores - scores.max(-1, keepdims=True))
    probs /= probs.sum(-1, keepdims=True)
    products = {
        f"scores Q_b @ K_b^T, [{blocks}, {s}, {d}] x [{blocks}, {d}, {c}]": {
            "a": rng.standard_normal((blocks, s, d)).astype(np.float32),
            "b": rng.standard_normal((blocks, d, c)).astype(np.float32),
        },
        f"values P @ V_b, [{blocks}, {s}, {c}] x [{blocks}, {c}, {d}]": {
            "a": probs.astype(np.float32),
            "b": rng.standard_normal((blocks, c, d)).astype(np.float32),
        },
    }
    command = " ".join(["python benchmarks/attention_products.py", *(sys.argv[1:] if argv is None else argv)])
    import onnxruntime

    setting = (
        f"Machine: {cpu_model()}, {os.cpu_count()} logical cores; {args.threads} threads; onnxruntime "
        f"{onnxruntime.__version__}, Python {platform.python_version()}. One head of one layer at "
        f"{args.tokens} tokens (a forward pass of longformer-base runs 144 of each); milliseconds, median "
        f"of {args.runs} (min); error = max |int8 - fp32| / max |fp32|; load average "
        f"{os.getloadavg()[0]:.2f} at the start."
    )
    lines = [
        f"## int8 attention products? (`{command}`)",
        "",
        setting,
        "",
        "| product | variant | median ms | min ms | relative error |",
        "|---|---|---|---|---|",
    ]
    for label, feeds in products.items():
        for name, median, fastest, error in measure(feeds, args.threads, args.runs):
            lines.append(f"| {label} | {name} | {median:.2f} | {fastest:.2f} | {error:.1e} |")
    publish("attention-int8", "\n".join(lines), args.results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
