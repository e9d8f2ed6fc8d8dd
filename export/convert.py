"""Convert: trace the patched model to ONNX, and quantize it to int8 for the CPU."""

from __future__ import annotations

import logging
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import onnx
import torch

from ..batching import INT8_BATCHED_ROW_TOKENS
from ..contract import GRAPH_OUTPUTS, INT8_ACTIVATIONS, LAST_HIDDEN_STATE, SENTENCE_EMBEDDING
from .model import LongformerForExport

log = logging.getLogger(__name__)

DEFAULT_OPSET = 17


@dataclass(frozen=True)
class Int8Recipe:
    """How to quantize: tried in order by the exporter until one passes the parity gate.

    Measured on all-MiniLM-L6-v2 converted to Longformer (``benchmarks/quantization_choice.md``):
    per-channel s8 weights beat per-tensor by far (per-tensor drops pooled cosine to 0.89);
    ``reduce_range`` only loses accuracy on VNNI CPUs; u8 weights gain little over s8 and run
    slower. Keeping the feed-forward down-projections in fp32 recovers most of the rest.

    ``activations``: ``"by-length"`` (the default, :mod:`.length_switch`: one scale per token on inputs
    up to :data:`SHORT_ROW_TOKENS` wide, so short rows share calls, and ONNX Runtime's per-call scale
    above, where one row per call is the fastest), ``"per-tensor"`` (``quantize_dynamic`` only: one
    scale per call, so the runtime runs every row alone) or ``"per-token"`` (:mod:`.per_token` at every
    width; a few percent slower than per-call on long inputs).
    """

    name: str
    per_channel: bool = True
    reduce_range: bool = False
    weight_type: str = "s8"
    keep_fp32: tuple[str, ...] = ()
    activations: str = "by-length"

    def as_dict(self) -> dict:
        return asdict(self)

    @property
    def batch_independent(self) -> bool:
        """Whether a row's result can be independent of the other rows of its call (per-token scales,
        on calls up to :attr:`batch_independent_width` wide)."""
        return self.activations in ("per-token", "by-length")

    @property
    def batch_independent_width(self) -> int | None:
        """The widest call (padded tokens) whose rows do not affect each other; None: any width."""
        return SHORT_ROW_TOKENS if self.activations == "by-length" else None


SHORT_ROW_TOKENS = INT8_BATCHED_ROW_TOKENS  # the by-length graph's per-token branch: inputs this wide or less


INT8_RECIPES = (
    Int8Recipe("all-linear"),
    Int8Recipe("ffn-out-fp32", keep_fp32=("ffn_out",)),
    Int8Recipe("ffn-fp32", keep_fp32=("ffn_in", "ffn_out")),
)


def dummy_inputs(model: LongformerForExport) -> tuple[torch.Tensor, ...]:
    """Two sequences of different lengths, one with two global tokens (when the model takes them), so
    every path is traced.

    The graph has no data-dependent branches, so the traced length does not matter for
    correctness; it is kept short (two blocks plus one token) to make tracing fast.
    """
    seq_len = min(2 * model.pad_multiple + 1, model.max_length)
    pad_token_id = model.pad_token_id
    ids = torch.full((2, seq_len), pad_token_id, dtype=torch.int64)
    token = 0 if pad_token_id != 0 else 1
    ids[0, :] = token
    ids[1, : max(1, seq_len // 2)] = token
    mask = (ids != pad_token_id).to(torch.int64)
    if not model.global_tokens:
        return ids, mask
    global_mask = torch.zeros_like(ids)
    global_mask[0, 0] = 1
    global_mask[0, seq_len - 1] = 1
    return ids, mask, global_mask


def export_onnx(model: LongformerForExport, path: Path, opset: int = DEFAULT_OPSET) -> onnx.ModelProto:
    """Trace with the TorchScript exporter (dynamo cannot export the data-dependent TopK ``k``)."""
    model.eval()
    inputs = dummy_inputs(model)
    axes = {name: {0: "batch", 1: "sequence"} for name in model.input_names}
    axes[LAST_HIDDEN_STATE] = {0: "batch", 1: "sequence"}
    axes[SENTENCE_EMBEDDING] = {0: "batch"}
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # tracer warnings about int() of the TopK count are expected
        torch.onnx.export(
            model,
            inputs,
            str(path),
            dynamo=False,
            opset_version=opset,
            input_names=list(model.input_names),
            output_names=list(GRAPH_OUTPUTS),
            dynamic_axes=axes,
            do_constant_folding=True,
        )
    model.eval()  # the exporter may leave modules in training mode
    graph = onnx.load(str(path))
    onnx.checker.check_model(graph)
    return graph


def int8_matmuls(graph: onnx.GraphProto, recipe: Int8Recipe) -> tuple[list[str], list[str]]:
    """(quantized, kept fp32) names of the graph's MatMul nodes under ``recipe``.

    Only a MatMul with a constant 2-D weight is a linear layer; ``keep_fp32`` names linear layers left
    in fp32: ``ffn_out`` the feed-forward down-projections (weight taller than wide; input after GELU,
    the widest activation range), ``ffn_in`` the up-projections (wider than tall). The attention
    projections (merged q | k | v is ``[D, 3D]``) are always quantized.
    """
    weights = {init.name: init for init in graph.initializer}

    def stays_fp32(node: onnx.NodeProto) -> bool:
        weight = weights.get(node.input[1])
        if weight is None or len(weight.dims) != 2:
            return True
        if node.name.startswith("/attentions."):
            return False
        rows, cols = weight.dims  # MatMul weights are [in, out]
        return ("ffn_out" in recipe.keep_fp32 and rows > cols) or (
            "ffn_in" in recipe.keep_fp32 and rows < cols
        )

    matmuls = [node for node in graph.node if node.op_type == "MatMul"]
    return [n.name for n in matmuls if not stays_fp32(n)], [n.name for n in matmuls if stays_fp32(n)]


def quantize_int8(fp32_path: Path, int8_path: Path, recipe: Int8Recipe = INT8_RECIPES[0]) -> onnx.ModelProto:
    """int8 linear layers (:func:`int8_matmuls`), activations quantized at run time.

    ``per-token`` recipes write the graph of :mod:`.per_token` (s8 weights per output channel). The
    ``per-tensor`` ones use ONNX Runtime's ``quantize_dynamic``: u8 activations with one scale per
    call; weights per output channel (s8) by default; ``reduce_range`` (7-bit weights) is only needed
    on CPUs without VNNI, where u8 x s8 products can saturate (``benchmarks/quantization_choice.py``).
    ``by-length`` recipes write both and join them with :func:`.length_switch.merge_by_length`.
    """
    if recipe.activations not in INT8_ACTIVATIONS:
        raise ValueError(f"recipe {recipe.name!r}: activations must be one of {', '.join(INT8_ACTIVATIONS)}")
    graph = onnx.load(str(fp32_path))
    quantize, exclude = int8_matmuls(graph.graph, recipe)
    if recipe.activations != "per-tensor" and (
        not recipe.per_channel or recipe.reduce_range or recipe.weight_type != "s8"
    ):
        raise ValueError(f"recipe {recipe.name!r}: per-token graphs have s8 weights per output channel")
    if recipe.activations == "per-token":
        from .per_token import quantize_per_token

        return quantize_per_token(fp32_path, int8_path, quantize)
    if recipe.activations == "by-length":
        from .length_switch import merge_by_length
        from .per_token import quantize_per_token

        long_path = int8_path.with_name(int8_path.stem + ".per-call.tmp.onnx")
        short_path = int8_path.with_name(int8_path.stem + ".per-token.tmp.onnx")
        try:
            _quantize_dynamic(fp32_path, long_path, recipe, exclude)
            quantize_per_token(fp32_path, short_path, quantize)
            return merge_by_length(long_path, short_path, int8_path, SHORT_ROW_TOKENS)
        finally:
            long_path.unlink(missing_ok=True)
            short_path.unlink(missing_ok=True)
    return _quantize_dynamic(fp32_path, int8_path, recipe, exclude)


def _quantize_dynamic(
    fp32_path: Path, int8_path: Path, recipe: Int8Recipe, exclude: list[str]
) -> onnx.ModelProto:
    """ONNX Runtime's dynamic quantization: one activation scale per call."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(
        str(fp32_path),
        str(int8_path),
        per_channel=recipe.per_channel,
        reduce_range=recipe.reduce_range,
        weight_type={"s8": QuantType.QInt8, "u8": QuantType.QUInt8}[recipe.weight_type],
        op_types_to_quantize=["MatMul"],
        nodes_to_exclude=exclude,
        extra_options={"MatMulConstBOnly": True},
    )
    quantized = onnx.load(str(int8_path))
    onnx.checker.check_model(quantized)
    return quantized


def pooling_only_nodes(graph: onnx.GraphProto) -> list[str]:
    """Names of the nodes that feed ``sentence_embedding`` but not ``last_hidden_state``.

    The masked mean sums up to ``max_length`` token vectors; in fp16 that sum can exceed 65504,
    so these nodes stay fp32 in the fp16 graph.
    """
    producer = {out: node for node in graph.node for out in node.output}

    def ancestors(tensor: str) -> set[str]:
        seen: set[str] = set()
        stack = [tensor]
        while stack:
            node = producer.get(stack.pop())
            if node is not None and node.name not in seen:
                seen.add(node.name)
                stack.extend(node.input)
        return seen

    return sorted(ancestors(SENTENCE_EMBEDDING) - ancestors(LAST_HIDDEN_STATE))


def _drop_duplicate_casts(graph: onnx.GraphProto) -> None:
    """onnxruntime < 1.32's converter adds one identical Cast per consumer of a tensor that feeds
    several blocked nodes, all with the same output name (invalid SSA); keep the first of each."""
    seen: set[tuple[str, ...]] = set()
    keep = []
    for node in graph.node:
        key = (node.op_type, *node.input, "->", *node.output)
        if node.op_type == "Cast" and key in seen:
            continue
        seen.add(key)
        keep.append(node)
    if len(keep) != len(graph.node):
        del graph.node[:]
        graph.node.extend(keep)


def convert_fp16(fp32_path: Path, fp16_path: Path) -> onnx.ModelProto:
    """fp16 weights and activations for the CUDA provider; inputs and outputs keep their types.

    Uses ONNX Runtime's converter (``onnxruntime.transformers.float16``) with its default block
    list (TopK, CumSum, Range and friends stay fp32, so the global-token order and the positions
    are exact) plus the pooling nodes (:func:`pooling_only_nodes`). The masking constant (-30000)
    fits fp16, and ORT's CUDA LayerNormalization and Softmax kernels accumulate fp16 inputs in
    fp32; the exporter's parity check is what proves the result.
    """
    from onnxruntime.transformers.float16 import convert_float_to_float16
    from onnxruntime.transformers.onnx_model import OnnxModel

    graph = onnx.load(str(fp32_path))
    converted = convert_float_to_float16(
        graph, keep_io_types=True, node_block_list=pooling_only_nodes(graph.graph)
    )
    _drop_duplicate_casts(converted.graph)
    OnnxModel(converted).topological_sort()  # the converter appends its Cast nodes at the end
    onnx.save(converted, str(fp16_path))
    onnx.checker.check_model(str(fp16_path))
    return converted
