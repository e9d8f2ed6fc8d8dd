"""Planted int8 faults: corrupt one quantized weight of an int8 graph, to show what the exporter's
verification catches (tests and ``benchmarks/ranking_gate.py``).

A broken quantizer or a mislaid weight rarely crashes: the graph runs and its vectors stay close to
the reference in plain cosine, because mean pooling is dominated by a text-independent component.
These helpers make such graphs on purpose.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

from .length_switch import all_nodes

QUANTIZED_OPS = ("MatMulInteger", "DynamicQuantizeMatMul", "MatMulIntegerToFloat")
FAULTS = ("shuffle_rows", "negate", "shuffle_columns")


def quantized_weights(graph: onnx.ModelProto) -> list[tuple[str, str]]:
    """(node name, weight initializer name) of every quantized linear layer, in graph order."""
    names = {init.name for init in graph.graph.initializer}
    found: dict[str, str] = {}  # weight -> first node; the branches of a by-length graph share weights
    for node in all_nodes(graph.graph):
        if node.op_type in QUANTIZED_OPS and node.input[1] in names:
            found.setdefault(node.input[1], node.name)
    return [(node, weight) for weight, node in found.items()]


def corrupt(weight: np.ndarray, fault: str, seed: int = 0) -> np.ndarray:
    """``weight`` ([in, out] int8/uint8) with ``fault`` applied: its rows (input features) permuted, its
    sign flipped (saturating), or its columns (output channels, whose per-channel scales stay put)
    permuted."""
    rng = np.random.default_rng(seed)
    if fault == "shuffle_rows":
        return weight[rng.permutation(weight.shape[0])]
    if fault == "shuffle_columns":
        return weight[:, rng.permutation(weight.shape[1])]
    if fault == "negate":
        info = np.iinfo(weight.dtype)
        return np.clip(-weight.astype(np.int32), info.min, info.max).astype(weight.dtype)
    raise ValueError(f"fault must be one of {FAULTS}, got {fault!r}")


def plant_int8_fault(
    int8_path: str | Path,
    out_path: str | Path,
    *,
    layer: int | str = 0,
    fault: str = "shuffle_rows",
    seed: int = 0,
) -> str:
    """Write ``int8_path`` with one quantized weight corrupted to ``out_path``; returns the node's name.

    ``layer`` picks the node: an index into :func:`quantized_weights` (negative counts from the end) or
    a substring of the node name (the first match).
    """
    graph = onnx.load(str(int8_path))
    targets = quantized_weights(graph)
    if not targets:
        raise ValueError(f"{int8_path} has no quantized weights ({' / '.join(QUANTIZED_OPS)} nodes)")
    if isinstance(layer, int):
        node_name, weight_name = targets[layer]
    else:
        matches = [t for t in targets if layer in t[0]]
        if not matches:
            raise ValueError(f"no quantized node name in {int8_path} contains {layer!r}")
        node_name, weight_name = matches[0]
    for index, init in enumerate(graph.graph.initializer):
        if init.name == weight_name:
            broken = corrupt(numpy_helper.to_array(init), fault, seed)
            graph.graph.initializer[index].CopyFrom(numpy_helper.from_array(broken, weight_name))
            break
    onnx.save(graph, str(out_path))
    return node_name
