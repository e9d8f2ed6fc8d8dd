"""One int8 graph with two quantizations, chosen by the input's width: per-token scales for short
inputs, ONNX Runtime's per-call scale for long ones.

Per-token activation scales (:mod:`.per_token`) make every row of a call independent of the others, so
short texts (queries, titles, sentences) can share calls; on long inputs they cost a few percent over
ONNX Runtime's dynamic quantization (one scale per call, fused into ``DynamicQuantizeMatMul``), which
runs documents one row per call anyway. This module joins the two graphs under one ``If`` on the
input's width (``input_ids.shape[1]``):

    width <= max_short_tokens   ->  the per-token graph (rows batch; a row's vector is its own)
    width >  max_short_tokens   ->  the per-call graph (run one row per call)

Both branches read the outer graph's initializers, and initializers with equal values are stored once:
the s8 weights of both quantizations (symmetric, one scale per output column) are the same bytes, so
the file is about as large as either graph. Each branch keeps the shapes ONNX shape inference gives it,
so ONNX Runtime applies the fusions it applies to a plain graph (SkipLayerNormalization needs a known
rank). A text's branch depends only on its own length, so every consumer that runs one text per call,
or batches only texts up to ``max_short_tokens`` tokens, gets vectors that do not depend on the batch.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper

WIDTH_LIMIT = "length_switch/max_short_tokens"


def all_nodes(graph: onnx.GraphProto) -> Iterator[onnx.NodeProto]:
    """Every node of ``graph`` and of its subgraphs (``If`` branches, ``Loop`` bodies), depth first."""
    for node in graph.node:
        yield node
        for attribute in node.attribute:
            for sub in [attribute.g, *attribute.graphs]:
                yield from all_nodes(sub)


def _same(a: onnx.TensorProto, b: onnx.TensorProto) -> bool:
    x, y = numpy_helper.to_array(a), numpy_helper.to_array(b)
    return x.dtype == y.dtype and x.shape == y.shape and np.array_equal(x, y)


def _branch(model: onnx.ModelProto, prefix: str, outer: set[str], rename: dict[str, str]) -> onnx.GraphProto:
    """``model``'s nodes as an ``If`` branch: its own tensors prefixed, outer names (graph inputs,
    initializers) read from the enclosing scope, ``rename`` applied to initializers stored under
    another name."""

    def name(tensor: str) -> str:
        if not tensor or (tensor in outer and tensor not in rename):
            return tensor
        return rename.get(tensor, prefix + tensor)

    nodes = []
    for node in model.graph.node:
        copy = onnx.NodeProto()
        copy.CopyFrom(node)
        copy.input[:] = [name(i) for i in copy.input]
        copy.output[:] = [prefix + o for o in copy.output]
        copy.name = prefix + copy.name
        nodes.append(copy)
    outputs = [helper.make_value_info(prefix + o.name, o.type) for o in model.graph.output]
    shapes = [
        helper.make_value_info(prefix + v.name, v.type) for v in model.graph.value_info if v.name not in outer
    ]
    return helper.make_graph(nodes, prefix.strip("/"), [], outputs, value_info=shapes)


def merge_by_length(
    long_path: Path, short_path: Path, output_path: Path, max_short_tokens: int
) -> onnx.ModelProto:
    """Write the graph that runs ``short_path``'s graph on inputs up to ``max_short_tokens`` wide and
    ``long_path``'s above; both must take and give the same inputs and outputs."""
    long_model = onnx.shape_inference.infer_shapes(onnx.load(str(long_path)))
    short_model = onnx.shape_inference.infer_shapes(onnx.load(str(short_path)))
    long_graph, short_graph = long_model.graph, short_model.graph
    if [i.name for i in long_graph.input] != [i.name for i in short_graph.input] or [
        o.name for o in long_graph.output
    ] != [o.name for o in short_graph.output]:
        raise ValueError(f"{long_path} and {short_path} differ in their inputs or outputs")
    stored = {init.name: init for init in long_graph.initializer}
    by_bytes = {
        (init.data_type, tuple(init.dims), init.raw_data): init.name
        for init in long_graph.initializer
        if init.raw_data
    }
    rename: dict[str, str] = {}
    extra: list[onnx.TensorProto] = []
    for init in short_graph.initializer:
        twin = by_bytes.get((init.data_type, tuple(init.dims), init.raw_data)) if init.raw_data else None
        if twin is not None:
            if twin != init.name:
                rename[init.name] = twin
            continue
        if init.name in stored and _same(stored[init.name], init):
            continue
        if init.name in stored:  # same name, other values: the short branch's own copy
            rename[init.name] = "short/" + init.name
            init.name = rename[init.name]
        extra.append(init)
    inputs = {i.name for i in long_graph.input}
    short_names = {init.name for init in short_graph.initializer} | set(rename)
    long_branch = _branch(long_model, "long/", inputs | set(stored), {})
    short_branch = _branch(short_model, "short/", inputs | short_names, rename)
    first_input = long_graph.input[0].name
    nodes = [
        helper.make_node(
            "Shape", [first_input], ["length_switch/width"], start=1, end=2, name="length_switch/width"
        ),
        helper.make_node(
            "Greater", ["length_switch/width", WIDTH_LIMIT], ["length_switch/long"], name="length_switch/long"
        ),
        helper.make_node(
            "If",
            ["length_switch/long"],
            [o.name for o in long_graph.output],
            then_branch=long_branch,
            else_branch=short_branch,
            name="length_switch",
        ),
    ]
    limit = numpy_helper.from_array(np.array([max_short_tokens], np.int64), WIDTH_LIMIT)
    graph = helper.make_graph(
        nodes,
        long_graph.name,
        list(long_graph.input),
        list(long_graph.output),
        [*long_graph.initializer, *extra, limit],
    )
    opsets = {o.domain: o for o in [*long_model.opset_import, *short_model.opset_import]}
    model = helper.make_model(graph, opset_imports=list(opsets.values()), ir_version=long_model.ir_version)
    onnx.save(model, str(output_path))
    onnx.checker.check_model(str(output_path))
    return model
