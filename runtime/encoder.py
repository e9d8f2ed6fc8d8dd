"""`Longformer2Vec`: the VectorHub-compatible facade. It wires the parts: model resolution and graph
choice (:mod:`.hub`), the ONNX session and its providers (:mod:`.session`), rows and batches
(:mod:`.batching`); the API, CLI, server, corpus job and Ray all embed through it."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tokenizers import Encoding, Tokenizer

from .batching import RowRunner, combine_rows, split_into_rows
from .card import ModelDefinition, definition_for
from .common import normalize as l2_normalize
from .contract import DEFAULT_MODEL, GraphEntry, Manifest, load_model_dir, verify_graph
from .errors import ModelLoadError
from .hub import default_cache_dir, resolve_model
from .options import GLOBAL_ATTENTIONS, POOLINGS, PRECISIONS, ModelOptions, OptionError, check_count
from .placement import expected_device, place, preferred_precision
from .session import (
    OnnxSession,
    ProviderSpec,
    default_providers,
    optimized_graph_path,
    session_providers,
)
from .text import check_text, check_texts

__all__ = ["DEFAULT_MODEL", "GLOBAL_ATTENTIONS", "POOLINGS", "PRECISIONS", "Longformer2Vec"]

log = logging.getLogger("longformer2vec")

CPU_MAX_BATCH_TOKENS = 2048
GPU_MAX_BATCH_TOKENS = 8192


def default_max_batch_tokens(providers: Sequence[str]) -> int:
    """Padded tokens per ONNX call when the caller does not say: 2048 on the CPU, where one call over
    more tokens runs slower per token (its activations fall out of the cache), 8192 (two 4096-token
    rows) on a GPU, which wants big calls. ``providers`` are the session's; the first runs the graph."""
    on_cpu = not providers or providers[0] == "CPUExecutionProvider"
    return CPU_MAX_BATCH_TOKENS if on_cpu else GPU_MAX_BATCH_TOKENS


def load_tokenizer(path: Path) -> Tokenizer:
    """The directory's tokenizer without any padding or truncation baked into it: the runtime owns both."""
    try:
        tokenizer = Tokenizer.from_file(str(path))
    except Exception as exc:  # tokenizers raises plain Exception subclasses
        raise ModelLoadError(f"Cannot load tokenizer {path}: {exc}") from exc
    tokenizer.no_padding()
    tokenizer.no_truncation()
    return tokenizer


class Longformer2Vec:
    """Embed text with an exported Longformer ONNX graph; drop-in for VectorHub's `Longformer2Vec`.

    `model_name` is an exported directory (with `manifest.json`), a hub id, or a local Hugging Face
    checkpoint; the latter two are exported into the cache on first use (needs the `export` extra).

    Behaviour worth knowing:

    * The graph: `precision` if given, else int8 when the session runs on the CPU, fp16 on CUDA, else
      what the directory holds (:mod:`.placement`). The device is the one the session really got: a
      CUDA request that ends on the CPU runs the CPU's graph, with one warning. The choice is logged and
      kept in :attr:`graph`. `global_attention="cls"` needs a graph exported with global tokens.
    * Every text is tokenized with the model's special tokens, so `""` embeds just the specials
      (e.g. `<s></s>`): a real, deterministic vector, not a placeholder.
    * Texts longer than `max_length` tokens are never truncated: they are split into overlapping
      windows (`chunk_overlap` tokens), embedded, and averaged weighted by token counts, before the
      optional L2 normalisation (:mod:`.batching` states the rule). `pooling="cls"` combines window CLS
      vectors the same way.
    * A text's vector depends on the text, the model and these options only, never on the other texts
      of a call: rows are padded with a mask that pooling ignores; the default int8 graph scales
      activations per token on inputs up to 128 tokens wide, so its short rows share calls, and once
      per call above, so longer rows run one per call (:func:`.batching.call_batches`).
      Other graphs batch up to `batch_size` rows sorted by length, within `max_batch_tokens` padded
      tokens (:func:`default_max_batch_tokens`), which bounds peak memory on long documents.
    * `optimized_cache=True` keeps ONNX Runtime's optimized copy of the graph under
      `<cache_dir>/optimized/` (keyed by graph sha256, onnxruntime version and providers), so later
      starts skip graph optimization; ignored when `session_options` is given. Off by default: the first
      start writes into the cache, which read-only deployments cannot take.
    * `spin=False` lets ONNX Runtime's intra-op threads sleep between operators instead of busy-waiting
      (its default): use it when other threads or processes share the cores (a server's event loop,
      other jobs), which spinning threads would otherwise take CPU from; ignored when
      `session_options` is given.
    * `use_io_binding=True` binds inputs and outputs to the session's device (ORT IO binding); off by
      default because it measured no faster on CUDA. Only the outputs a pooling needs are fetched.
    """

    def __init__(
        self,
        model_name: str | os.PathLike[str] = DEFAULT_MODEL,
        *,
        pooling: str = "mean",
        global_attention: str = "none",
        normalize: bool = False,
        precision: str | None = None,
        providers: Sequence[ProviderSpec] | None = None,
        session_options: Any = None,
        intra_op_num_threads: int | None = None,
        spin: bool = True,
        use_io_binding: bool = False,
        batch_size: int = 8,
        max_batch_tokens: int | None = None,
        chunk_overlap: int | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
        optimized_cache: bool = False,
    ) -> None:
        try:
            options = ModelOptions(
                model=model_name,  # type: ignore[arg-type]
                precision=precision,
                pooling=pooling,
                global_attention=global_attention,
                normalize=normalize,
                threads=intra_op_num_threads,
                spin=spin,
                batch_size=batch_size,
                max_batch_tokens=max_batch_tokens,
                chunk_overlap=chunk_overlap,
            )
        except OptionError as exc:
            if exc.name != "threads":
                raise
            raise OptionError("intra_op_num_threads", exc.problem) from None
        self._load(options, providers, session_options, use_io_binding, cache_dir, optimized_cache)

    @classmethod
    def from_options(cls, options: ModelOptions, **session: Any) -> Longformer2Vec:
        """The model ``options`` (already validated) describe; ``session`` takes the keyword arguments
        that are no model options (``providers``, ``session_options``, ``use_io_binding``,
        ``cache_dir``, ``optimized_cache``). The CLI and the server build their models this way."""
        model = cls.__new__(cls)
        model._load(
            options,
            session.pop("providers", None),
            session.pop("session_options", None),
            session.pop("use_io_binding", False),
            session.pop("cache_dir", None),
            session.pop("optimized_cache", False),
        )
        if session:
            raise TypeError(f"from_options() got unexpected keyword arguments {sorted(session)}")
        return model

    def _load(
        self,
        options: ModelOptions,
        providers: Sequence[ProviderSpec] | None,
        session_options: Any,
        use_io_binding: bool,
        cache_dir: str | os.PathLike[str] | None,
        optimized_cache: bool,
    ) -> None:
        """Resolve the model, read its directory, place its graph and session (options are checked)."""
        self.options = options
        self.model_name = options.model
        self.pooling = options.pooling
        self.global_attention = options.global_attention
        self.normalize = options.normalize
        self.batch_size = options.batch_size
        precision, global_attention = options.precision, options.global_attention
        intra_op_num_threads, max_batch_tokens, chunk_overlap = (
            options.threads,
            options.max_batch_tokens,
            options.chunk_overlap,
        )
        self._model_dir = resolve_model(
            options.model,
            cache_dir,
            precision=lambda: precision or preferred_precision(expected_device(providers)),
            global_tokens=options.global_tokens,
        )
        self._manifest = load_model_dir(self._model_dir, verify_hash=False)
        self.chunk_overlap = self._manifest.chunk_overlap if chunk_overlap is None else chunk_overlap
        self._tokenizer = load_tokenizer(self._manifest.tokenizer_path)

        def open_session(graph: GraphEntry, chosen: list[ProviderSpec] | None, memory_pattern: bool):
            return self._open_session(
                graph,
                chosen,
                memory_pattern,
                session_options,
                intra_op_num_threads,
                options.spin,
                use_io_binding,
                optimized_cache,
                cache_dir,
            )

        placement = place(self._manifest, precision, global_attention, providers, open_session)
        self._graph, self._session = placement.graph, placement.session
        log.info("%s: using %s (%s)", self._model_dir, self._graph.file, self._graph.name)
        self.max_batch_tokens = (
            default_max_batch_tokens(self.providers) if max_batch_tokens is None else max_batch_tokens
        )
        self._rows = RowRunner(
            self._session,
            self._graph,
            pad_token_id=self._manifest.pad_token_id,
            max_length=self.max_length,
            vector_length=self.vector_length,
            pooling=self.pooling,
            global_attention=global_attention,
        )
        self.definition: ModelDefinition = definition_for(self._manifest)

    def _open_session(
        self,
        graph: GraphEntry,
        providers: Sequence[ProviderSpec] | None,
        memory_pattern: bool,
        session_options: Any,
        intra_op_num_threads: int | None,
        spin: bool,
        use_io_binding: bool,
        optimized_cache: bool,
        cache_dir: str | os.PathLike[str] | None,
    ) -> OnnxSession:
        """Check one graph (file present, sha256 as the manifest says) and open a session on it."""
        verify_graph(graph, self._manifest.path)
        providers = session_providers(graph, providers)
        optimized = None
        if optimized_cache and graph.sha256:
            root = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
            optimized = optimized_graph_path(root, graph.sha256, providers or default_providers())
        return OnnxSession(
            graph.path,
            providers=providers,
            session_options=session_options,
            intra_op_num_threads=intra_op_num_threads,
            use_io_binding=use_io_binding,
            optimized_cache=optimized,
            memory_pattern=memory_pattern,
            spin=spin,
        )

    # --------------------------------------------------------------- properties
    @property
    def model_dir(self) -> Path:
        return self._model_dir

    @property
    def manifest(self) -> Manifest:
        return self._manifest

    @property
    def graph(self) -> GraphEntry:
        """The graph this model runs (file, precision, sha256, parity figures)."""
        return self._graph

    @property
    def precision(self) -> str:
        return self._graph.precision

    @property
    def providers(self) -> list[str]:
        """Execution providers the ONNX session actually uses."""
        return self._session.providers

    @property
    def vector_length(self) -> int:
        return self._manifest.vector_length

    @property
    def max_length(self) -> int:
        return self._manifest.max_length

    @property
    def tokenizer(self) -> Tokenizer:
        return self._tokenizer

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(model_id={self._manifest.model_id!r}, model_dir='{self._model_dir}', "
            f"graph={self._graph.file!r}, precision={self.precision!r}, pooling={self.pooling!r}, "
            f"global_attention={self.global_attention!r}, normalize={self.normalize}, "
            f"providers={self.providers})"
        )

    # ------------------------------------------------------------------ public
    def encode(self, text: str | list[str]) -> list[float] | list[list[float]]:
        """Embed one string (-> list[float]) or a list of strings (-> list[list[float]], via bulk_encode)."""
        if isinstance(text, (list, tuple)):
            return self.bulk_encode(list(text))
        return self._embed([check_text(text, "text")])[0][0].tolist()

    def bulk_encode(self, texts: list[str], batch_size: int | None = None) -> list[list[float]]:
        """Embed many strings; output order matches input order."""
        return self.encode_numpy(texts, batch_size=batch_size).tolist()

    def encode_numpy(self, texts: Iterable[str], batch_size: int | None = None) -> np.ndarray:
        """Core embedding path: float32 array [len(texts), vector_length]."""
        return self._embed(check_texts(texts), batch_size)[0]

    embed = encode_numpy

    def encode_numpy_with_token_counts(
        self, texts: Iterable[str], batch_size: int | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """`encode_numpy` plus each text's token count (specials included, before windowing), from the
        same tokenization as the vectors, so corpus tools report tokens/s without tokenizing twice."""
        return self._embed(check_texts(texts), batch_size)

    def _embed(self, texts: list[str], batch_size: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Texts already checked -> (vectors, token counts), each text tokenized once."""
        encodings = self._tokenizer.encode_batch(texts) if texts else []
        counts = np.array([len(enc.ids) for enc in encodings], dtype=np.int64)
        return self.encode_encodings(encodings, batch_size), counts

    def encode_encodings(self, encodings: Sequence[Encoding], batch_size: int | None = None) -> np.ndarray:
        """Vectors of texts the caller has already tokenized with :attr:`tokenizer` (``Encoding``s, specials
        included), as :meth:`encode_numpy` would return them: the server counts and checks each
        request's tokens before queueing it, and hands the same encodings on instead of tokenizing twice.
        """
        if not encodings:
            return np.zeros((0, self.vector_length), dtype=np.float32)
        size = self.batch_size if batch_size is None else check_count("batch_size", batch_size, 1)
        rows = split_into_rows(encodings, self.max_length, self.chunk_overlap)
        out = combine_rows(rows, self._rows.run(rows, size, self.max_batch_tokens), len(encodings))
        return l2_normalize(out) if self.normalize else out
