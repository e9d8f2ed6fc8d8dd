"""int8 with one activation scale per token: batches of any shape give every row the vector it has alone.

ONNX Runtime's dynamic quantization (``DynamicQuantizeLinear``, fused into ``DynamicQuantizeMatMul``)
scales a linear layer's input with one scale for the whole call, so a row's vector depends on the rows
(and padding) beside it. Here each token's activations are quantized on their own: symmetric, scale
``max|x| / 127`` over the hidden axis, stored as u8 with the constant zero point 128 so that MLAS keeps
its u8 x s8 GEMM. Per linear layer (MatMul with a constant 2-D weight ``[K, N]``)::

    s   = max(ReduceMax(x), -ReduceMin(x)) / 127            [..., 1], one per token
    xq  = QuantizeLinear(x * (1 / s), 1, 128)                u8 (a multiply: Div is slower)
    y   = MatMulIntegerToFloat(xq, Wq, s, w_scale, 128)      com.microsoft; int32 GEMM, per-column
                                                             weight scale, then the per-row scale

Weights are s8, symmetric, one scale per output column. The bias ``Add`` that follows the MatMul stays
a separate node: ``MatMulIntegerToFloat`` adds a fused bias before applying a per-row ``a_scale``, which
would scale the bias too. Layers that read the same tensor (the attention projections) share one
quantized copy of it. Integer GEMM is exact, so a token's result is a function of its own values; only
float noise upstream (a different batch shape) can move a value across a rounding boundary.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper

MS_DOMAIN = "com.microsoft"
ZERO_POINT = 128
TINY_SCALE = 1e-30  # an all-zero token quantizes to the zero point instead of dividing by zero
ACTIVATIONS = "u8, per token (symmetric, zero point 128)"


def quantize_weight(weight: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """s8 weights and one float scale per output column (``weight`` is ``[in, out]``), symmetric."""
    scale = np.abs(weight).max(axis=0) / 127.0
    scale = np.where(scale > 0, scale, 1.0).astype(np.float32)
    quantized = np.clip(np.rint(weight / scale), -127, 127).astype(np.int8)
    return quantized, scale


def _opset(model: onnx.ModelProto) -> int:
    return next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))


class _Builder:
    """Adds the per-token nodes to one graph; names are prefixed so they never collide."""

    def __init__(self, model: onnx.ModelProto) -> None:
        self.model = model
        self.opset = _opset(model)
        self.nodes: dict[str, list[onnx.NodeProto]] = {}  # MatMul name -> nodes replacing it
        self.scales: dict[str, tuple[str, str]] = {}  # input tensor -> (quantized, scale)
        self.initializers: list[onnx.TensorProto] = []
        constants = {
            "pt_zero_point": np.array(ZERO_POINT, np.uint8),
            "pt_one": np.array(1.0, np.float32),
            "pt_inv127": np.array(1.0 / 127.0, np.float32),
            "pt_tiny": np.array(TINY_SCALE, np.float32),
        }
        if self.opset >= 18:  # ReduceMax/ReduceMin take their axes as an input from opset 18 on
            constants["pt_last_axis"] = np.array([-1], np.int64)
        self.initializers += [numpy_helper.from_array(value, name) for name, value in constants.items()]

    def _reduce(self, op: str, x: str, out: str) -> onnx.NodeProto:
        if self.opset >= 18:
            return helper.make_node(op, [x, "pt_last_axis"], [out], keepdims=1, name=out)
        return helper.make_node(op, [x], [out], axes=[-1], keepdims=1, name=out)

    def quantized_input(self, x: str, nodes: list[onnx.NodeProto]) -> tuple[str, str]:
        """(u8 tensor, per-token scale) for ``x``, built once per tensor."""
        if x in self.scales:
            return self.scales[x]
        p = f"pt/{len(self.scales)}/"
        nodes += [
            self._reduce("ReduceMax", x, p + "max"),
            self._reduce("ReduceMin", x, p + "min"),
            helper.make_node("Neg", [p + "min"], [p + "neg_min"], name=p + "neg_min"),
            helper.make_node("Max", [p + "max", p + "neg_min"], [p + "absmax"], name=p + "absmax"),
            helper.make_node("Mul", [p + "absmax", "pt_inv127"], [p + "scale0"], name=p + "scale0"),
            helper.make_node("Max", [p + "scale0", "pt_tiny"], [p + "scale"], name=p + "scale"),
            helper.make_node("Reciprocal", [p + "scale"], [p + "inverse"], name=p + "inverse"),
            helper.make_node("Mul", [x, p + "inverse"], [p + "scaled"], name=p + "scaled"),
            helper.make_node(
                "QuantizeLinear", [p + "scaled", "pt_one", "pt_zero_point"], [p + "q"], name=p + "q"
            ),
        ]
        self.scales[x] = (p + "q", p + "scale")
        return self.scales[x]

    def replace(self, node: onnx.NodeProto, weight: np.ndarray) -> None:
        nodes: list[onnx.NodeProto] = []
        xq, scale = self.quantized_input(node.input[0], nodes)
        wq, w_scale = quantize_weight(weight)
        base = node.input[1]
        self.initializers += [
            numpy_helper.from_array(wq, base + "_s8"),
            numpy_helper.from_array(w_scale, base + "_scale"),
        ]
        nodes.append(
            helper.make_node(
                "MatMulIntegerToFloat",
                [xq, base + "_s8", scale, base + "_scale", "pt_zero_point"],
                list(node.output),
                name=node.name + "_per_token",
                domain=MS_DOMAIN,
            )
        )
        self.nodes[node.name] = nodes


def quantize_per_token(fp32_path: Path, int8_path: Path, quantize: list[str]) -> onnx.ModelProto:
    """Rewrite the MatMul nodes named in ``quantize`` (each with a constant 2-D weight) as per-token
    int8; every other node stays as it is. The graph keeps its inputs, outputs and opset."""
    model = onnx.load(str(fp32_path))
    graph = model.graph
    weights = {init.name: init for init in graph.initializer}
    builder = _Builder(model)
    targets = set(quantize)
    for node in graph.node:
        if node.name in targets:
            builder.replace(node, numpy_helper.to_array(weights[node.input[1]]).astype(np.float32))
    missing = targets - set(builder.nodes)
    if missing:
        raise ValueError(f"no MatMul named {sorted(missing)[:3]} in {fp32_path}")
    new_nodes: list[onnx.NodeProto] = []
    for node in graph.node:
        new_nodes.extend(builder.nodes.get(node.name, [node]))
    del graph.node[:]
    graph.node.extend(new_nodes)
    used = {name for node in graph.node for name in node.input}
    kept = [init for init in graph.initializer if init.name in used]
    del graph.initializer[:]
    graph.initializer.extend(kept + builder.initializers)
    if not any(o.domain == MS_DOMAIN for o in model.opset_import):
        model.opset_import.append(helper.make_opsetid(MS_DOMAIN, 1))
    onnx.save(model, str(int8_path))
    onnx.checker.check_model(str(int8_path))
    return model
