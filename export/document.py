"""The document graph: token ids of any length in, the runtime's document vector out, in one ONNX file.

It wraps an exported, verified encoder graph (``onnx/model*.onnx``) in an ONNX ``Loop`` that applies the
runtime's windowing rule (README, "Long texts"; ``runtime/batching.py``) inside the graph:

- ``input_ids`` ``[1, n]`` (the ids ``tokenizer.json`` gives, specials included) and an optional
  ``attention_mask`` ``[1, n]`` (ones then zeros: only the first ``sum(mask)`` ids count; left out, every
  id counts). ``h`` leading and ``t`` trailing ids are the specials the tokenizer's post-processor adds.
- The content between them (``C = n - h - t`` ids) is cut into windows of ``W = max_length - h - t`` ids
  starting every ``S = W - chunk_overlap`` ids; the last window ends at the last id. ``n <= max_length``
  is one window: the whole input. Window count ``K = 1 + ceil(max(0, C - W) / S)``.
- Iteration ``k`` of the Loop builds row ``specials + content[kS : kS + W] + specials``, pads it exactly
  as the runtime's one-row call does (to the graph's pad multiple, never past ``max_length``; pad id,
  mask 0) and runs the encoder's nodes on it: one row per call, as the runtime runs int8 graphs, so
  dynamic quantization sees the same activations.
- ``document_embedding`` ``[1, hidden]`` is the mean of the window vectors weighted by their row lengths,
  accumulated in float64 like ``combine_rows``, then cast to float32.

The encoder's nodes form the Loop body. Its weight matrices stay initializers of the outer graph, which
the body reads from the enclosing scope; with ``share_weights`` (the default) they are ONNX external
data pointing at the byte ranges of the encoder file itself (``location`` is the encoder's file name,
beside the document graph in ``onnx/``), so the encoder file is not changed and they are stored once.
Its small tensors (biases, LayerNorm scales, quantization scales: under 1% of the bytes) are copied into
the body: ONNX Runtime only fuses a LayerNormalization with the Add before it (SkipLayerNormalization,
as it does in the encoder file) when its scale and bias are constants of the same graph, and without
that fusion an int8 vector moved by 3e-3 in the base geometry. External data of a Loop body's own
initializers is not found by onnxruntime-web, which is why the matrices stay outside. Bindings that load
a graph from a path resolve the external data beside it; onnxruntime-web takes the encoder file's bytes
through its ``externalData`` option.
"""

from __future__ import annotations

import mmap
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from ..contract import ATTENTION_MASK, DOCUMENT_EMBEDDING, INPUT_IDS, SENTENCE_EMBEDDING
from .length_switch import all_nodes

P = "document/"  # prefix of every tensor this module adds, so none collides with the encoder's names
INLINE_BELOW = 4096  # bytes: smaller matrices are copied into the document graph


def _varint(buf, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7


def _fields(buf, start: int, end: int) -> Iterator[tuple[int, int, int]]:
    """(field number, start, end) of each length-delimited field of one protobuf message."""
    pos = start
    while pos < end:
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            _, pos = _varint(buf, pos)
        elif wire == 1:
            pos += 8
        elif wire == 5:
            pos += 4
        elif wire == 2:
            length, pos = _varint(buf, pos)
            yield number, pos, pos + length
            pos += length
        else:
            raise ValueError(f"unexpected protobuf wire type {wire} at byte {pos}")


# field numbers of onnx.proto: ModelProto.graph, GraphProto.initializer, TensorProto.name / raw_data
_MODEL_GRAPH, _GRAPH_INITIALIZER, _TENSOR_NAME, _TENSOR_RAW_DATA = 7, 5, 8, 9


def raw_data_offsets(path: Path) -> dict[str, tuple[int, int]]:
    """Byte offset and length of each initializer's ``raw_data`` inside a serialized ONNX model file.

    Protobuf stores a ``bytes`` field verbatim, so these ranges are the tensors' little-endian bytes,
    which is what ONNX external data points at."""
    offsets: dict[str, tuple[int, int]] = {}
    with open(path, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as buf:
        for number, g_start, g_end in _fields(buf, 0, len(buf)):
            if number != _MODEL_GRAPH:
                continue
            for field, t_start, t_end in _fields(buf, g_start, g_end):
                if field != _GRAPH_INITIALIZER:
                    continue
                name, raw = None, None
                for tfield, start, end in _fields(buf, t_start, t_end):
                    if tfield == _TENSOR_NAME:
                        name = bytes(buf[start:end]).decode("utf-8")
                    elif tfield == _TENSOR_RAW_DATA:
                        raw = (start, end - start)
                if name is not None and raw is not None:
                    offsets[name] = raw
    return offsets


def _shared_initializer(init: TensorProto, location: str, offset: int, length: int) -> TensorProto:
    """``init`` as external data at ``offset`` of ``location`` (no bytes of its own)."""
    shared = TensorProto()
    shared.CopyFrom(init)
    shared.ClearField("raw_data")
    shared.data_location = TensorProto.EXTERNAL
    del shared.external_data[:]
    for key, value in (("location", location), ("offset", str(offset)), ("length", str(length))):
        entry = shared.external_data.add()
        entry.key, entry.value = key, value
    return shared


def _ancestors(graph: onnx.GraphProto, output: str) -> list[onnx.NodeProto]:
    """The nodes ``output`` depends on, in the graph's (topological) order."""
    producer = {out: i for i, node in enumerate(graph.node) for out in node.output}
    needed: set[int] = set()
    stack = [output]
    while stack:
        index = producer.get(stack.pop())
        if index is not None and index not in needed:
            needed.add(index)
            node = graph.node[index]
            stack.extend(node.input)
            for attribute in node.attribute:  # names a subgraph (and its own subgraphs) read from this scope
                for sub in [attribute.g, *attribute.graphs]:
                    stack.extend(i for n in all_nodes(sub) for i in n.input)
    return [node for i, node in enumerate(graph.node) if i in needed]


def _rename_inputs(node: onnx.NodeProto, rename: dict[str, str]) -> None:
    """Rename ``node``'s inputs, and those of the nodes of its subgraphs (an ``If`` reads the graph's
    inputs from its branches), in place."""
    nested = (inner for a in node.attribute for sub in [a.g, *a.graphs] for inner in all_nodes(sub))
    for target in [node, *nested]:
        target.input[:] = [rename.get(name, name) for name in target.input]


def _const(name: str, value, dtype=np.int64) -> TensorProto:
    return numpy_helper.from_array(np.asarray(value, dtype=dtype), P + name)


def _node(op: str, inputs: list[str], output: str, **attrs) -> onnx.NodeProto:
    keep = ("", INPUT_IDS, ATTENTION_MASK)  # the graph's inputs keep their names
    names = [i if i in keep or i.startswith(P) else P + i for i in inputs]
    return helper.make_node(op, names, [P + output], **attrs)


def _body(
    encoder: onnx.GraphProto,
    weights: list[TensorProto],
    *,
    max_length: int,
    pad_multiple: int,
    pad_token_id: int,
) -> onnx.GraphProto:
    """One window: row from the outer ``content`` / ``head`` / ``tail`` / ``window`` / ``stride``,
    padded as the runtime pads a one-row call, through the encoder; its vector and its weight out."""
    n = _node
    nodes = [
        n("Mul", ["iter", "stride"], "start"),
        n("Sub", ["content_len", "start"], "left"),
        n("Min", ["window", "left"], "width"),
        n("Add", ["start", "width"], "stop"),
        n("Unsqueeze", ["start", "axis0"], "start_1d"),
        n("Unsqueeze", ["stop", "axis0"], "stop_1d"),
        n("Slice", ["content", "start_1d", "stop_1d", "axis0"], "chunk"),
        n("Concat", ["head", "chunk", "tail"], "row", axis=0),
        n("Add", ["width", "frame_len"], "row_len"),
        # padded width: row_len up to one multiple, else rounded up, unless that passes max_length
        n("Add", ["row_len", "multiple_minus_1"], "row_len_up"),
        n("Div", ["row_len_up", "multiple"], "blocks"),
        n("Mul", ["blocks", "multiple"], "rounded"),
        n("Greater", ["row_len", "multiple"], "over_one_block"),
        n("LessOrEqual", ["rounded", "max_length"], "fits"),
        n("And", ["over_one_block", "fits"], "pads"),
        n("Where", ["pads", "rounded", "row_len"], "padded_len"),
        n("Sub", ["padded_len", "row_len"], "pad_len"),
        n("Unsqueeze", ["pad_len", "axis0"], "pad_len_1d"),
        n("Concat", ["zero_1d", "pad_len_1d"], "pads_spec", axis=0),
        n("Pad", ["row", "pads_spec", "pad_id"], "row_padded", mode="constant"),
        n("Range", ["zero", "padded_len", "one"], "positions"),
        n("Less", ["positions", "row_len"], "real"),
        n("Cast", ["real"], "mask_1d", to=TensorProto.INT64),
        n("Unsqueeze", ["row_padded", "axis0"], "window_ids"),
        n("Unsqueeze", ["mask_1d", "axis0"], "window_mask"),
    ]
    constants = [
        _const("multiple", pad_multiple),
        _const("multiple_minus_1", pad_multiple - 1),
        _const("max_length", max_length),
        _const("pad_id", pad_token_id),
    ]
    rename = {INPUT_IDS: P + "window_ids", ATTENTION_MASK: P + "window_mask"}
    for node in _ancestors(encoder, SENTENCE_EMBEDDING):
        copy = onnx.NodeProto()
        copy.CopyFrom(node)
        _rename_inputs(copy, rename)
        nodes.append(copy)
    nodes += [
        helper.make_node("Identity", [P + "cond_in"], [P + "cond_out"]),
        helper.make_node("Identity", [SENTENCE_EMBEDDING], [P + "window_vector"]),
        _node("Cast", ["row_len"], "window_weight", to=TensorProto.DOUBLE),
    ]
    hidden = None
    for out in encoder.output:
        if out.name == SENTENCE_EMBEDDING:
            hidden = out.type.tensor_type.shape.dim[1]
    vector = helper.make_tensor_value_info(
        P + "window_vector", TensorProto.FLOAT, [1, hidden.dim_value or None]
    )
    return helper.make_graph(
        nodes,
        "window",
        [
            helper.make_tensor_value_info(P + "iter", TensorProto.INT64, []),
            helper.make_tensor_value_info(P + "cond_in", TensorProto.BOOL, []),
        ],
        [
            helper.make_tensor_value_info(P + "cond_out", TensorProto.BOOL, []),
            vector,
            helper.make_tensor_value_info(P + "window_weight", TensorProto.DOUBLE, []),
        ],
        initializer=[*constants, *weights],
        # The window's shape as the encoder's own inputs declare it: ONNX shape inference cannot follow
        # a Pad with computed pads, and without a known rank ONNX Runtime skips the fusions it applies
        # to the encoder file (SkipLayerNormalization, FusedMatMul...), which would change its results.
        value_info=[
            helper.make_tensor_value_info(P + "window_ids", TensorProto.INT64, [1, "window"]),
            helper.make_tensor_value_info(P + "window_mask", TensorProto.INT64, [1, "window"]),
            *(v for v in encoder.value_info if v.name not in rename),
        ],
    )


def build_document_graph(
    encoder_path: Path,
    output_path: Path,
    *,
    max_length: int,
    chunk_overlap: int,
    pad_token_id: int,
    pad_multiple: int,
    head: int,
    tail: int,
    share_weights: bool = True,
) -> onnx.ModelProto:
    """Write the document graph of the encoder at ``encoder_path`` to ``output_path`` (same folder when
    ``share_weights``: its initializers point into the encoder file) and return it."""
    if share_weights and encoder_path.parent.resolve() != output_path.parent.resolve():
        raise ValueError("a document graph that shares weights must sit beside its encoder graph")
    encoder = onnx.load(str(encoder_path), load_external_data=False)
    window = max_length - head - tail
    if window < 1:
        raise ValueError(f"max_length {max_length} leaves no room next to {head + tail} special tokens")
    stride = window - min(max(chunk_overlap, 0), window - 1)
    location = encoder_path.name
    offsets = raw_data_offsets(encoder_path) if share_weights else {}
    weights, shared = [], []  # the body's own (copied) initializers; the matrices read from the encoder
    for init in encoder.graph.initializer:
        span = offsets.get(init.name)
        if span is not None and len(init.dims) >= 2 and span[1] >= INLINE_BELOW:
            shared.append(_shared_initializer(init, location, *span))
        else:
            weights.append(init)
    if not share_weights:
        onnx.load_external_data_for_model(encoder, str(encoder_path.parent))
        weights = list(encoder.graph.initializer)
    n = _node
    outer = [
        # the ids that count: the first sum(mask) (all of them when no mask is given)
        n("Shape", [INPUT_IDS], "ids_shape"),
        n("Gather", ["ids_shape", "one"], "n_given", axis=0),
        n("ReduceSum", [ATTENTION_MASK], "mask_sum", keepdims=0),
        n("Size", [ATTENTION_MASK], "mask_size"),
        n("Equal", ["mask_size", "zero"], "no_mask"),
        n("Where", ["no_mask", "n_given", "mask_sum"], "n"),
        n("Reshape", [INPUT_IDS, "minus_one_1d"], "flat_ids"),
        n("Unsqueeze", ["n", "axis0"], "n_1d"),
        n("Slice", ["flat_ids", "zero_1d", "n_1d", "axis0"], "ids"),
        n("Slice", ["ids", "zero_1d", "head_len_1d", "axis0"], "head"),
        n("Sub", ["n", "tail_len"], "content_end"),
        n("Unsqueeze", ["content_end", "axis0"], "content_end_1d"),
        n("Slice", ["ids", "content_end_1d", "n_1d", "axis0"], "tail"),
        n("Slice", ["ids", "head_len_1d", "content_end_1d", "axis0"], "content"),
        n("Sub", ["content_end", "head_len"], "content_len"),
        # K = 1 + ceil(max(0, C - W) / S)
        n("Sub", ["content_len", "window"], "excess"),
        n("Max", ["excess", "zero"], "excess_pos"),
        n("Add", ["excess_pos", "stride_minus_1"], "excess_up"),
        n("Div", ["excess_up", "stride"], "extra_windows"),
        n("Add", ["extra_windows", "one"], "windows"),
        helper.make_node(
            "Loop",
            [P + "windows", ""],
            [P + "window_vectors", P + "window_weights"],
            body=_body(
                encoder.graph,
                weights,
                max_length=max_length,
                pad_multiple=pad_multiple,
                pad_token_id=pad_token_id,
            ),
        ),
        # token-weighted mean in float64, as the runtime's combine_rows
        n("Cast", ["window_vectors"], "vectors64", to=TensorProto.DOUBLE),
        n("Reshape", ["window_weights", "weights_shape"], "weights3"),
        n("Mul", ["vectors64", "weights3"], "weighted"),
        n("ReduceSum", ["weighted", "axis0"], "weighted_sum", keepdims=0),
        n("ReduceSum", ["window_weights"], "total_weight", keepdims=0),
        n("Div", ["weighted_sum", "total_weight"], "mean64"),
        helper.make_node("Cast", [P + "mean64"], [DOCUMENT_EMBEDDING], to=TensorProto.FLOAT),
    ]
    constants = [
        _const("one", 1),
        _const("zero", 0),
        _const("zero_1d", [0]),
        _const("axis0", [0]),
        _const("minus_one_1d", [-1]),
        _const("head_len", head),
        _const("head_len_1d", [head]),
        _const("tail_len", tail),
        _const("frame_len", head + tail),
        _const("window", window),
        _const("stride", stride),
        _const("stride_minus_1", stride - 1),
        _const("weights_shape", [-1, 1, 1]),
    ]
    hidden_dim = next(
        o for o in encoder.graph.output if o.name == SENTENCE_EMBEDDING
    ).type.tensor_type.shape.dim[1]
    # attention_mask: an input with a default, so callers may leave it out (IR >= 4 lets inputs override
    # initializers); the default, empty, means "every id counts".
    default_mask = numpy_helper.from_array(np.zeros((1, 0), dtype=np.int64), ATTENTION_MASK)
    graph = helper.make_graph(
        outer,
        "document",
        [
            helper.make_tensor_value_info(INPUT_IDS, TensorProto.INT64, [1, "sequence"]),
            helper.make_tensor_value_info(ATTENTION_MASK, TensorProto.INT64, [1, "mask_sequence"]),
        ],
        [
            helper.make_tensor_value_info(
                DOCUMENT_EMBEDDING, TensorProto.FLOAT, [1, hidden_dim.dim_value or "hidden"]
            )
        ],
        initializer=[*constants, default_mask, *shared],
    )
    model = helper.make_model(graph, opset_imports=list(encoder.opset_import), producer_name="longformer2vec")
    model.ir_version = max(encoder.ir_version, 4)
    model.functions.extend(encoder.functions)
    onnx.save(model, str(output_path))
    onnx.checker.check_model(str(output_path))  # by path: external data resolves beside the file
    return model
