"""PyTorch -> ONNX export of Longformer, verified against HF eager before it is saved.

Needs the ``export`` extra (torch, transformers, onnx). Split like optimum's exporters:
:mod:`.model` patches the model (banded attention from :mod:`.attention`), :mod:`.convert`
traces and quantizes, :mod:`.verify` checks parity; :func:`export_model` runs them in order and
writes a self-contained model directory that the runtime loads.
"""

from __future__ import annotations

import hashlib
import json
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from ..common import content_span
from ..encoder import DEFAULT_MODEL
from ..hub import LAYOUTS, PRECISIONS
from .convert import INT8_RECIPES, Int8Recipe
from .verify import FP32_TOKEN_MAX_RELATIVE, POOLED_COSINE_THRESHOLDS, VERIFICATION_TEXT, ParityError

__all__ = ["INT8_RECIPES", "PRECISIONS", "Int8Recipe", "ParityError", "export_model"]

GRAPH_FILE = "model.onnx"
MANIFEST_FILE = "manifest.json"
TOKENIZER_FILE = "tokenizer.json"
CARD_FILE = "card.md"
FORMAT_VERSION = 1


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def load_hf(model: str):
    """Load ``LongformerModel`` and its fast tokenizer from a hub id or a local HF directory."""
    from transformers import AutoConfig, AutoTokenizer, LongformerModel

    config = AutoConfig.from_pretrained(model)
    if config.model_type != "longformer":
        raise ValueError(
            f"{model} is a {config.model_type!r} model; only 'longformer' models can be exported"
        )
    hf_model = LongformerModel.from_pretrained(model, add_pooling_layer=False).eval()
    tokenizer = AutoTokenizer.from_pretrained(model)
    if not getattr(tokenizer, "is_fast", False):
        raise ValueError(f"{model}: a fast tokenizer (tokenizer.json) is required for the runtime")
    return hf_model, tokenizer


def special_token_frame(backend) -> tuple[list[int], list[int]]:
    """Special-token ids the post-processor puts before and after a text (e.g. ``<s>``, ``</s>``)."""
    encoding = backend.encode("a")
    start, end = content_span(encoding.special_tokens_mask)
    return encoding.ids[:start], encoding.ids[end:]


def runtime_tokenizer(tokenizer):
    """A copy of the fast tokenizer's backend without padding or truncation (the runtime owns both)."""
    backend = type(tokenizer.backend_tokenizer).from_str(tokenizer.backend_tokenizer.to_str())
    backend.no_padding()
    backend.no_truncation()
    return backend


def parity_cases(config, tokenizer, max_len: int | None = None, global_tokens: bool = True) -> list:
    """The verification cases for a model: its windows, maximum length, specials and vocabulary; the
    cases with a global ``<s>`` only for a graph that takes global tokens."""
    from .model import attention_windows, max_length
    from .verify import build_cases

    backend = runtime_tokenizer(tokenizer)
    prefix, suffix = special_token_frame(backend)
    return build_cases(
        max_len=min(max_length(config), max_len or max_length(config)),
        window=max(attention_windows(config)),
        vocab_size=min(int(config.vocab_size), backend.get_vocab_size()),
        pad_token_id=int(config.pad_token_id),
        prefix_ids=prefix,
        suffix_ids=suffix,
        special_ids=tokenizer.all_special_ids,
        text_ids=backend.encode(VERIFICATION_TEXT, add_special_tokens=False).ids,
        global_tokens=global_tokens,
    )


def verification_providers(precision: str, layout: str | None = None) -> list:
    """Where a graph is checked: fp16 on CUDA when this onnxruntime has it (the graph's target), else
    everything on the CPU. fp32 stays on the CPU even with CUDA, whose default TF32 matmuls would
    blur the 1e-3 token check; a ``fused`` graph has no CPU kernel, so its fp32 check runs on CUDA
    with TF32 off."""
    import onnxruntime as ort

    has_cuda = "CUDAExecutionProvider" in ort.get_available_providers()
    if layout == "fused":
        if not has_cuda:
            raise ValueError(FUSED_NEEDS_CUDA)
        options = {"use_tf32": "0"} if precision == "fp32" else {}
        return [("CUDAExecutionProvider", options), "CPUExecutionProvider"]
    if precision == "fp16" and has_cuda:
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


FUSED_NEEDS_CUDA = (
    "layout 'fused' emits ONNX Runtime's LongformerAttention, which has a CUDA kernel only, and every "
    "export is verified against PyTorch before it is written: exporting it needs onnxruntime-gpu "
    "(the longformer2vec-gpu distribution) and a working CUDA device. Use layout 'gpu' (fp16) or "
    "'cpu' elsewhere."
)


def _card_text(model_id: str, vector_length: int) -> str:
    from ..models import card_path, default_card

    path = card_path(model_id)
    return path.read_text(encoding="utf-8") if path is not None else default_card(model_id, vector_length)


def _versions() -> dict[str, str]:
    import onnx
    import onnxruntime
    import torch
    import transformers

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "onnx": onnx.__version__,
        "onnxruntime": onnxruntime.__version__,
    }


def _replace_dir(staging: Path, output_dir: Path) -> None:
    """Move a finished export into place; never clobbers a directory that is not an export."""
    if output_dir.exists():
        if not output_dir.is_dir():
            raise FileExistsError(f"{output_dir} exists and is not a directory")
        if any(output_dir.iterdir()) and not (output_dir / MANIFEST_FILE).exists():
            raise FileExistsError(
                f"{output_dir} is a non-empty directory that is not a longformer2vec export"
            )
        old = output_dir.with_name(output_dir.name + f".old-{int(time.time())}")
        output_dir.rename(old)
        staging.rename(output_dir)
        shutil.rmtree(old, ignore_errors=True)
    else:
        output_dir.parent.mkdir(parents=True, exist_ok=True)
        staging.rename(output_dir)


def export_model(
    model: str = DEFAULT_MODEL,
    output_dir: str | Path = "longformer-onnx",
    precision: str = "fp32",
    *,
    opset: int | None = None,
    int8_recipes: Sequence[Int8Recipe] | None = None,
    model_id: str | None = None,
    layout: str | None = None,
    global_tokens: bool = True,
    progress: Callable[[str], None] = _stderr,
) -> Path:
    """Export ``model`` (hub id or local HF dir) to ``output_dir``; returns the directory.

    The graph is verified against the PyTorch model before anything is written; a parity failure
    raises :class:`ParityError` naming the failing cases and leaves ``output_dir`` untouched.
    For int8, ``int8_recipes`` (default :data:`INT8_RECIPES`: fastest first) are tried in order
    and the first that passes the gate is kept; the manifest records every attempt. ``layout``
    (``"cpu"``, ``"gpu"`` or ``"fused"``, see :class:`.model.LongformerForExport`) defaults per
    precision and model size (:func:`.model.default_layout`); all compute the same function.
    ``"fused"`` (ONNX Runtime's CUDA-only ``LongformerAttention``) is never chosen by default and
    can only be exported where CUDA can verify it. ``global_tokens=False`` writes a graph without
    global attention (no ``global_attention_mask`` input): what VectorHub's ``encode`` computes,
    with fewer nodes (:class:`.model.LongformerForExport`); the runtime exports that one for
    ``global_attention="none"``.
    """
    import onnx
    import onnxruntime as ort

    from .convert import DEFAULT_OPSET, INT8_RECIPES, convert_fp16, export_onnx, quantize_int8
    from .model import (
        LongformerForExport,
        attention_windows,
        default_layout,
        max_length,
        pad_multiple,
    )
    from .ranking import RANKING_THRESHOLDS, RankingCheck
    from .verify import check_thresholds, compare, format_table, results_to_json, torch_reference

    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if layout is not None and layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
    if layout == "fused":
        if precision == "int8":
            raise ValueError(
                "layout 'fused' runs on CUDA only; int8 graphs are for the CPU (use fp16 or fp32)"
            )
        verification_providers(precision, layout)  # fails early, before loading the checkpoint
    opset = opset or DEFAULT_OPSET
    output_dir = Path(output_dir).expanduser().resolve()
    model_id = model_id or model

    progress(f"loading {model}")
    hf_model, tokenizer = load_hf(model)
    config = hf_model.config
    layout = layout or default_layout(config, precision)
    wrapper = LongformerForExport(hf_model, layout=layout, global_tokens=global_tokens).eval()

    output_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{output_dir.name}.tmp-", dir=output_dir.parent))
    staging.chmod(0o755)  # mkdtemp makes it private; the export is an ordinary directory
    try:
        fp32_path = staging / ("model.fp32.onnx" if precision != "fp32" else GRAPH_FILE)
        progress(f"exporting fp32 graph (opset {opset})")
        export_onnx(wrapper, fp32_path, opset=opset)
        hf_model.eval()

        cases = parity_cases(config, tokenizer, global_tokens=global_tokens)
        references = []
        for number, case in enumerate(cases, start=1):
            globals_note = " + global <s>" if case.global_first_token else ""
            progress(f"PyTorch reference {number}/{len(cases)}: {case.name} {case.lengths}{globals_note}")
            references.append(torch_reference(hf_model, case))

        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        parity: dict[str, list[dict]] = {}
        ranking: dict[str, list[dict]] = {}  # quantized graphs: does the text-dependent part survive?
        ranked = RankingCheck(hf_model, tokenizer, global_tokens, progress) if precision != "fp32" else None

        def verify(path: Path, precision_name: str, label: str) -> None:
            providers = verification_providers(precision_name, layout)
            session = ort.InferenceSession(str(path), options, providers=providers)
            if precision_name == "fp16" or layout == "fused":
                label = f"{label} on {session.get_providers()[0]}"
            results = [
                compare(case, ref, session, secs) for case, (ref, secs) in zip(cases, references, strict=True)
            ]
            progress(format_table(results, label))
            parity[label] = results_to_json(results)
            if ranked is not None and precision_name != "fp32":
                ranking[label] = ranked.score(session, label)
            check_thresholds(results, precision_name)
            if ranked is not None and precision_name != "fp32":
                ranked.check(precision_name)

        verify(fp32_path, "fp32", "fp32")
        graph_path = fp32_path
        recipe = None
        if precision == "int8":
            graph_path = staging / GRAPH_FILE
            recipes = list(int8_recipes or INT8_RECIPES)
            for attempt, recipe in enumerate(recipes, start=1):
                progress(f"quantizing to int8, recipe {recipe.name!r} ({attempt}/{len(recipes)})")
                quantize_int8(fp32_path, graph_path, recipe)
                try:
                    verify(graph_path, "int8", f"int8 {recipe.name}")
                    break
                except ParityError as error:
                    if attempt == len(recipes):
                        raise
                    progress(f"{error}; trying the next recipe")
        elif precision == "fp16":
            graph_path = staging / GRAPH_FILE
            progress("converting to fp16 (pooling stays fp32)")
            convert_fp16(fp32_path, graph_path)
            verify(graph_path, "fp16", "fp16")
        if graph_path != fp32_path:
            fp32_path.unlink()

        graph = onnx.load(str(graph_path), load_external_data=False)
        runtime_tokenizer(tokenizer).save(str(staging / TOKENIZER_FILE))
        (staging / CARD_FILE).write_text(_card_text(model_id, int(config.hidden_size)), encoding="utf-8")
        manifest = {
            "format_version": FORMAT_VERSION,
            "model_id": model_id,
            "precision": precision,
            "opset": opset,
            "graph_file": GRAPH_FILE,
            "graph_sha256": sha256_file(graph_path),
            "node_count": len(graph.graph.node),
            "inputs": [i.name for i in graph.graph.input],
            "outputs": [o.name for o in graph.graph.output],
            "attention_windows": attention_windows(config),
            "layout": layout,
            "pad_multiple": pad_multiple(config, layout),
            "max_length": max_length(config),
            "vector_length": int(config.hidden_size),
            "pooling": "mean",
            "pad_token_id": int(config.pad_token_id),
            "tokenizer_file": TOKENIZER_FILE,
            "card_file": CARD_FILE,
            "quantization": (
                {**recipe.as_dict(), "activations": "u8, dynamic, per tensor"} if recipe is not None else None
            ),
            "parity_thresholds": {
                "pooled_min_cosine": dict(POOLED_COSINE_THRESHOLDS),
                "token_max_relative": {"fp32": FP32_TOKEN_MAX_RELATIVE},
                "ranking_min": {"int8": dict(RANKING_THRESHOLDS), "fp16": dict(RANKING_THRESHOLDS)},
            },
            "parity": parity,
            "ranking": ranking,
            "versions": _versions(),
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        (staging / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        _replace_dir(staging, output_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    progress(f"wrote {output_dir} ({precision}, {manifest['node_count']} nodes)")
    return output_dir
