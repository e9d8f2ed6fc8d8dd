"""The export pipeline: load the Hugging Face model, trace, verify and convert each graph
(:class:`_GraphWriter`), write the directory; :func:`export_model` runs them in order.

Needs the ``export`` extra (torch, transformers, onnx).
"""

from __future__ import annotations

import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from ..batching import content_span
from ..contract import (
    DEFAULT_MODEL,
    FORMAT_VERSION,
    LAYOUTS,
    MANIFEST_FILE,
    PRECISIONS,
    GraphEntry,
    Manifest,
    default_chunk_overlap,
    graph_file,
    sha256_file,
)
from ..errors import ModelLoadError, ParityError
from .convert import INT8_RECIPES, Int8Recipe
from .directory import merge_graphs
from .length_switch import all_nodes
from .ranking import RANKING_THRESHOLDS
from .verify import FP32_TOKEN_MAX_RELATIVE, POOLED_COSINE_THRESHOLDS, VERIFICATION_TEXT


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def load_hf(model: str):
    """Load ``LongformerModel`` and its fast tokenizer from a hub id or a local HF directory."""
    from transformers import AutoConfig, AutoTokenizer, LongformerModel

    try:
        config = AutoConfig.from_pretrained(model)
    except OSError as exc:  # no network, no such repository, no config.json
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelLoadError(
            f"cannot load {model!r} from the Hugging Face hub or disk ({first_line}). Without network, "
            f"export it where the hub is reachable (`longformer2vec export {model} --output DIR`), copy DIR "
            "here and load Longformer2Vec('DIR'); or pass a local checkpoint folder"
        ) from exc
    if config.model_type != "longformer":
        raise ValueError(
            f"{model} is a {config.model_type!r} model; only 'longformer' models can be exported"
        )
    hf_model = LongformerModel.from_pretrained(model, add_pooling_layer=False).eval()
    tokenizer = AutoTokenizer.from_pretrained(model)
    if not getattr(tokenizer, "is_fast", False):
        raise ValueError(f"{model}: a fast tokenizer (tokenizer.json) is required for the runtime")
    return hf_model, tokenizer


def quantization_record(recipe) -> dict:
    """The manifest's ``quantization`` of an int8 graph: the recipe, how activations are scaled, and
    whether (up to which call width) rows of one call leave each other's results alone."""
    from .per_token import ACTIVATIONS as PER_TOKEN

    per_call = "u8, dynamic, per tensor"
    activations = {
        "per-token": PER_TOKEN,
        "per-tensor": per_call,
        "by-length": f"{PER_TOKEN} on inputs up to {recipe.batch_independent_width} tokens wide; {per_call} above",
    }[recipe.activations]
    record = {
        **recipe.as_dict(),
        "activation_mode": recipe.activations,
        "activations": activations,
        "batch_independent": recipe.batch_independent,
    }
    if recipe.batch_independent_width is not None:
        record["batch_independent_width"] = recipe.batch_independent_width
    return record


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


def _precision_list(precision: str | Sequence[str]) -> list[str]:
    """``"fp32,int8"``, ``["fp32", "int8"]`` or ``"int8"`` as a checked list without repeats."""
    names = precision.split(",") if isinstance(precision, str) else list(precision)
    names = list(dict.fromkeys(name.strip() for name in names if name.strip()))
    bad = [name for name in names if name not in PRECISIONS]
    if bad or not names:
        raise ValueError(f"precision must be one or more of {PRECISIONS}, got {precision!r}")
    return names


def export_model(
    model: str = DEFAULT_MODEL,
    output_dir: str | Path = "longformer-onnx",
    precision: str | Sequence[str] = "fp32",
    *,
    opset: int | None = None,
    int8_recipes: Sequence[Int8Recipe] | None = None,
    model_id: str | None = None,
    layout: str | None = None,
    global_tokens: bool = False,
    document_graph: bool = False,
    progress: Callable[[str], None] = _stderr,
) -> Path:
    """Export ``model`` (hub id or local HF dir) to ``output_dir``; returns the directory.

    ``precision`` is one precision or several (``"fp32,int8"``); each becomes one graph
    (``onnx/model.onnx``, ``onnx/model_int8.onnx``, ...). The graphs take ``input_ids`` and
    ``attention_mask``; ``global_tokens=True`` also writes, beside each, a graph that takes
    ``global_attention_mask`` (``onnx/model_global*.onnx``). Every graph is verified against the
    PyTorch model before anything is written: a parity failure raises :class:`ParityError` naming the
    failing cases and leaves ``output_dir`` untouched. For int8, ``int8_recipes`` (default
    :data:`INT8_RECIPES`, fastest first) are tried in order and the first that passes is kept; the
    manifest records every attempt. ``layout`` (``"cpu"``, ``"gpu"`` or ``"fused"``, see
    :class:`.model.LongformerForExport`) defaults per precision and model size
    (:func:`.model.default_layout`); all compute the same function. An existing export of the same
    model at ``output_dir`` keeps its other graphs; the new ones are added (or replace their twins).
    ``document_graph=True`` also writes, beside each plain graph, its document graph
    (``onnx/model_document*.onnx``: any number of token ids in, the windowed document vector out;
    :mod:`.document_export`), verified against the runtime's own windowing.
    """
    from .directory import check_output_dir, install, write_model_files
    from .model import attention_windows, default_layout, max_length

    precisions = _precision_list(precision)
    if layout is not None and layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
    if layout == "fused":
        if "int8" in precisions:
            raise ValueError(
                "layout 'fused' runs on CUDA only; int8 graphs are for the CPU (use fp16 or fp32)"
            )
        for name in precisions:
            verification_providers(name, layout)  # fails early, before loading the checkpoint
    output_dir = Path(output_dir).expanduser().resolve()
    check_output_dir(output_dir)
    model_id = model_id or model

    progress(f"loading {model}")
    hf_model, tokenizer = load_hf(model)
    config = hf_model.config
    output_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{output_dir.name}.tmp-", dir=output_dir.parent))
    staging.chmod(0o755)  # mkdtemp makes it private; the export is an ordinary directory
    try:
        graphs = _GraphWriter(hf_model, tokenizer, staging, opset, int8_recipes, global_tokens, progress)
        if any(name != "fp32" for name in precisions):
            graphs.start_ranking(tokenizer, global_tokens)
        for variant in (False, True) if global_tokens else (False,):
            by_layout: dict[str, list[str]] = {}
            for name in precisions:
                by_layout.setdefault(layout or default_layout(config, name), []).append(name)
            for graph_layout, names in by_layout.items():
                graphs.write(variant, graph_layout, names)
        write_model_files(
            staging, hf_model, tokenizer, runtime_tokenizer(tokenizer), model_id, max_length(config)
        )
        manifest = Manifest(
            path=staging / MANIFEST_FILE,
            format_version=FORMAT_VERSION,
            model_id=model_id,
            max_length=max_length(config),
            vector_length=int(config.hidden_size),
            graphs=merge_graphs([], graphs.entries),
            pad_token_id=int(config.pad_token_id),
            pooling="mean",
            chunk_overlap=default_chunk_overlap(max_length(config)),
            attention_windows=attention_windows(config),
        )
        if document_graph:
            from .document_export import add_document_graphs

            add_document_graphs(staging, manifest, runtime_tokenizer(tokenizer), progress)
        install(staging, output_dir, manifest, progress)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    summary = ", ".join(f"{g.file} ({g.node_count} nodes)" for g in manifest.graphs)
    progress(f"wrote {output_dir}: {summary}")
    return output_dir


class _GraphWriter:
    """Traces, verifies and converts the graphs of one export into the staging directory."""

    def __init__(
        self, hf_model, tokenizer, staging: Path, opset, int8_recipes, global_tokens: bool, progress
    ):
        from .convert import DEFAULT_OPSET
        from .verify import torch_reference

        self.hf_model, self.staging, self.progress = hf_model, staging, progress
        self.opset = opset or DEFAULT_OPSET
        self.recipes = list(int8_recipes or INT8_RECIPES)
        self.entries: list[GraphEntry] = []
        self.ranking = None  # RankingCheck: int8 and fp16 graphs are also held to retrieval figures
        self.versions = _versions()
        self.cases = parity_cases(hf_model.config, tokenizer, global_tokens=global_tokens)
        self.references = []
        for number, case in enumerate(self.cases, start=1):
            note = " + global <s>" if case.global_first_token else ""
            progress(f"PyTorch reference {number}/{len(self.cases)}: {case.name} {case.lengths}{note}")
            self.references.append(torch_reference(hf_model, case))

    def start_ranking(self, tokenizer, global_tokens: bool) -> None:
        """PyTorch's vectors of the ranking text set, computed once for every quantized graph."""
        from .ranking import RankingCheck

        self.ranking = RankingCheck(self.hf_model, tokenizer, global_tokens, self.progress)

    def write(self, global_tokens: bool, layout: str, precisions: list[str]) -> None:
        """One traced fp32 graph (checked first: every other precision is derived from it), then each of
        ``precisions`` from it."""
        from .convert import export_onnx
        from .model import LongformerForExport

        wrapper = LongformerForExport(self.hf_model, layout=layout, global_tokens=global_tokens).eval()
        traced = self.staging / f"traced-{layout}-{int(global_tokens)}.onnx"
        self.progress(
            f"exporting fp32 graph ({layout} layout{', global tokens' if global_tokens else ''}, opset {self.opset})"
        )
        export_onnx(wrapper, traced, opset=self.opset)
        self.hf_model.eval()
        pairs = [
            (c, r)
            for c, r in zip(self.cases, self.references, strict=True)
            if global_tokens or not c.global_first_token
        ]
        fp32_parity: dict[str, list[dict]] = {}
        self._verify(traced, "fp32", "fp32", layout, pairs, fp32_parity)
        for name in sorted(precisions, key=lambda p: p == "fp32"):  # fp32 last: it moves the traced file
            target = self.staging / graph_file(name, global_tokens)
            target.parent.mkdir(parents=True, exist_ok=True)
            parity, ranking = dict(fp32_parity), {}
            recipe = None
            if name == "fp32":
                traced.rename(target)
            elif name == "int8":
                recipe = self._quantize(traced, target, layout, pairs, parity, ranking)
            else:
                from .convert import convert_fp16

                self.progress("converting to fp16 (pooling stays fp32)")
                convert_fp16(traced, target)
                self._verify(target, "fp16", "fp16", layout, pairs, parity, ranking)
            self.entries.append(self._entry(target, name, global_tokens, layout, recipe, parity, ranking))
        traced.unlink(missing_ok=True)

    def _verify(
        self,
        path: Path,
        precision: str,
        label: str,
        layout: str,
        pairs,
        parity: dict,
        ranking: dict | None = None,
    ) -> None:
        """Parity against PyTorch on the cases; for int8 and fp16 also the ranking figures (both recorded
        under ``label`` before either gate may refuse the graph)."""
        import onnxruntime as ort

        from .verify import check_thresholds, compare, format_table, results_to_json

        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        session = ort.InferenceSession(
            str(path), options, providers=verification_providers(precision, layout)
        )
        if precision == "fp16" or layout == "fused":
            label = f"{label} on {session.get_providers()[0]}"
        results = [compare(case, ref, session, secs) for case, (ref, secs) in pairs]
        self.progress(format_table(results, label))
        parity[label] = results_to_json(results)
        scored = self.ranking is not None and ranking is not None and precision != "fp32"
        if scored:
            ranking[label] = self.ranking.score(session, label)
        check_thresholds(results, precision)
        if scored:
            self.ranking.check(precision)

    def _quantize(
        self, traced: Path, target: Path, layout: str, pairs, parity: dict, ranking: dict
    ) -> Int8Recipe:
        from .convert import quantize_int8

        for attempt, recipe in enumerate(self.recipes, start=1):
            self.progress(f"quantizing to int8, recipe {recipe.name!r} ({attempt}/{len(self.recipes)})")
            quantize_int8(traced, target, recipe)
            try:
                self._verify(target, "int8", f"int8 {recipe.name}", layout, pairs, parity, ranking)
                return recipe
            except ParityError as error:
                if attempt == len(self.recipes):
                    raise
                self.progress(f"{error}; trying the next recipe")
        raise ParityError("no int8 recipe to try")

    def _entry(
        self, path: Path, precision: str, global_tokens: bool, layout: str, recipe, parity, ranking
    ) -> GraphEntry:
        import onnx

        from .model import pad_multiple

        graph = onnx.load(str(path), load_external_data=False)
        return GraphEntry(
            file=path.relative_to(self.staging).as_posix(),
            precision=precision,
            global_tokens=global_tokens,
            sha256=sha256_file(path),
            inputs=[i.name for i in graph.graph.input],
            outputs=[o.name for o in graph.graph.output],
            layout=layout,
            pad_multiple=pad_multiple(self.hf_model.config, layout),
            opset=self.opset,
            node_count=sum(1 for _ in all_nodes(graph.graph)),
            quantization=quantization_record(recipe) if recipe is not None else None,
            parity=parity,
            parity_thresholds={
                "pooled_min_cosine": dict(POOLED_COSINE_THRESHOLDS),
                "token_max_relative": {"fp32": FP32_TOKEN_MAX_RELATIVE},
                **({"ranking_min": dict(RANKING_THRESHOLDS)} if ranking else {}),
            },
            ranking=ranking or None,
            versions=self.versions,
            created=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            model_dir=self.staging,
        )
