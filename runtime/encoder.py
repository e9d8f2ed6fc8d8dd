"""`Longformer2Vec`: the VectorHub-compatible facade over tokenizer + ONNX session."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tokenizers import Encoding, Tokenizer

from .card import ModelDefinition, load_card, parse_card
from .common import content_span, pad_batch, padded_width, split_long, token_budget_batches
from .common import normalize as l2_normalize
from .errors import Longformer2VecError, ModelLoadError
from .hub import PRECISIONS as EXPORT_PRECISIONS
from .hub import default_cache_dir, resolve_model
from .manifest import Manifest, load_model_dir
from .session import OnnxSession, ProviderSpec, default_providers, optimized_graph_path, will_use_cpu_only

DEFAULT_MODEL = "allenai/longformer-base-4096"
POOLINGS = ("mean", "cls")
GLOBAL_ATTENTIONS = ("none", "cls")
PRECISIONS = (None, *EXPORT_PRECISIONS)  # None: int8 on the CPU, fp16 on CUDA


@dataclass
class _Piece:
    """One model input row: a whole text or one chunk of a long text."""

    text_index: int
    ids: list[int]


def _check_int(name: str, value: object, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")


def _check_choice(name: str, value: object, allowed: Sequence[object]) -> None:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {list(allowed)}, got {value!r}")


CPU_MAX_BATCH_TOKENS = 2048
GPU_MAX_BATCH_TOKENS = 8192


def default_max_batch_tokens(providers: Sequence[str]) -> int:
    """Padded tokens per ONNX call when the caller does not say: measured per device (see
    :class:`Longformer2Vec`); ``providers`` are the session's, first one runs the graph."""
    on_cpu = not providers or providers[0] == "CPUExecutionProvider"
    return CPU_MAX_BATCH_TOKENS if on_cpu else GPU_MAX_BATCH_TOKENS


class Longformer2Vec:
    """Embed text with an exported Longformer ONNX graph; drop-in for VectorHub's `Longformer2Vec`.

    `model_name` is an exported directory (with `manifest.json`), a hub id, or a local Hugging Face
    checkpoint; the latter two are exported into the cache on first use (needs the `export` extra).
    With `global_attention="none"` (VectorHub's `encode`) that export leaves global attention out of
    the graph (fewer nodes: a 16-token input ran 1.25-1.37x faster on the CPU); `global_attention="cls"`
    exports (or finds) a graph that takes `global_attention_mask`, and refuses an exported directory
    whose graph does not.

    Behaviour worth knowing:

    * Every text is tokenized with the model's special tokens, so `""` embeds just the specials
      (e.g. `<s></s>`) - a real, deterministic vector, not a placeholder.
    * Texts longer than `max_length` tokens are never truncated. The content between the leading and
      trailing special tokens is split into windows of `max_length - n_specials` tokens overlapping by
      `chunk_overlap`; each window is re-wrapped in the same specials and embedded, and the text's vector
      is the mean of the window vectors weighted by each window's token count (specials included),
      taken before optional L2 normalisation. With `pooling="cls"` the window CLS vectors are combined
      the same way.
    * Batches are sorted by length and padded (mask 0) to a multiple of the manifest's `pad_multiple`
      (a batch no longer than one multiple, e.g. of sentences, is left as it is: the graph runs it unpadded);
      masked mean pooling makes padding irrelevant, so `bulk_encode(t)[i] == encode(t[i])` up to float noise.
      A batch holds at most `batch_size` rows and `max_batch_tokens` padded tokens, which bounds peak
      memory on long documents. The default depends on the device (:func:`default_max_batch_tokens`):
      2048 on the CPU, where one call over more tokens runs slower per token (its activations fall out
      of the cache: `bulk_encode` of the benchmark corpus ran 1.3x faster than with 8192), and 8192
      (two 4096-token rows) on a GPU, which wants big calls.
    * `precision=None` picks int8 when only the CPU provider will run, else fp16 (CUDA); it only affects
      models that must be resolved/exported - an exported directory has its own precision.
    * `optimized_cache=True` keeps an ONNX Runtime-optimized copy of the graph under
      `<cache_dir>/optimized/` (keyed by graph sha256, onnxruntime version and providers) so later
      starts skip graph optimization (base int8: 0.75 -> 0.62 s, same peak RSS); ignored when
      `session_options` is given. Off by default: the first start writes the copy into the cache,
      which read-only deployments cannot take.
    * `use_io_binding=True` binds inputs and outputs to the session's device (ORT IO binding); off by
      default because it measured no faster on CUDA here. Only the outputs a pooling needs are fetched.
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
        use_io_binding: bool = False,
        batch_size: int = 8,
        max_batch_tokens: int | None = None,
        chunk_overlap: int = 256,
        cache_dir: str | os.PathLike[str] | None = None,
        optimized_cache: bool = False,
    ) -> None:
        _check_choice("pooling", pooling, POOLINGS)
        _check_choice("global_attention", global_attention, GLOBAL_ATTENTIONS)
        _check_choice("precision", precision, PRECISIONS)
        _check_int("batch_size", batch_size, minimum=1)
        if max_batch_tokens is not None:
            _check_int("max_batch_tokens", max_batch_tokens, minimum=1)
        _check_int("chunk_overlap", chunk_overlap, minimum=0)
        self.model_name = str(model_name)
        self.pooling = pooling
        self.global_attention = global_attention
        self.normalize = bool(normalize)
        self.batch_size = batch_size
        self.chunk_overlap = chunk_overlap
        if precision is None:
            precision = "int8" if will_use_cpu_only(providers) else "fp16"
        self._model_dir = resolve_model(
            model_name, precision, cache_dir, global_tokens=global_attention != "none"
        )
        self._manifest = load_model_dir(self._model_dir)
        if global_attention != "none" and not self._manifest.accepts_global_tokens:
            raise ModelLoadError(
                f"{self._model_dir} holds a graph exported without global tokens (its inputs: "
                f"{', '.join(self._manifest.inputs)}), so global_attention={global_attention!r} cannot run "
                "on it: export the model again without --no-global-tokens (global_tokens=False), or pass "
                "the hub id / checkpoint and let the runtime export a graph that takes them"
            )
        self._tokenizer = self._load_tokenizer(self._manifest.tokenizer_path)
        optimized = None
        if optimized_cache and self._manifest.graph_sha256:
            root = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
            optimized = optimized_graph_path(
                root, self._manifest.graph_sha256, providers or default_providers()
            )
        if self._manifest.layout == "fused":
            providers = self._fused_providers(providers)
        self._session = OnnxSession(
            self._manifest.graph_path,
            providers=providers,
            session_options=session_options,
            intra_op_num_threads=intra_op_num_threads,
            use_io_binding=use_io_binding,
            optimized_cache=optimized,
            # A graph that takes global tokens sizes its slots with TopK, a value that becomes a shape; on
            # the CPU, ORT's memory pattern then grew on repeated long calls (base int8: peak RSS 856 ->
            # 649 MB with it off, same speed; benchmarks/RESULTS.md, graph-ab-mem-pattern).
            memory_pattern=not (self._manifest.accepts_global_tokens and will_use_cpu_only(providers)),
        )
        self.max_batch_tokens = (
            default_max_batch_tokens(self.providers) if max_batch_tokens is None else max_batch_tokens
        )
        self.definition: ModelDefinition = self._load_definition(self._manifest)

    # ------------------------------------------------------------------ loading
    def _fused_providers(self, providers: Sequence[ProviderSpec] | None) -> list[ProviderSpec]:
        """A ``fused`` graph (ONNX Runtime's LongformerAttention) has a CUDA kernel only: refuse a CPU-only
        session up front, and ask for CUDA explicitly so a failed CUDA start is an error, not a CPU
        fallback that cannot run the graph."""
        chosen = list(providers) if providers is not None else default_providers()
        if will_use_cpu_only(chosen):
            raise ModelLoadError(
                f"{self._model_dir} holds a 'fused' graph (ONNX Runtime's LongformerAttention), which runs "
                f"on the CUDA provider only, and this session would run on {chosen or 'the CPU'}: install "
                "longformer2vec-gpu on a CUDA machine, or load an export with layout 'cpu' or 'gpu'"
            )
        return chosen

    @staticmethod
    def _load_tokenizer(path: Path) -> Tokenizer:
        """Load and strip any padding/truncation baked into tokenizer.json: the runtime owns both."""
        try:
            tok = Tokenizer.from_file(str(path))
        except Exception as exc:  # tokenizers raises plain Exception subclasses
            raise ModelLoadError(f"Cannot load tokenizer {path}: {exc}") from exc
        tok.no_padding()
        tok.no_truncation()
        return tok

    @staticmethod
    def _load_definition(manifest: Manifest) -> ModelDefinition:
        """Card from the model dir, else the packaged card, else a minimal generated one."""
        if manifest.card_path.is_file():
            try:
                return load_card(manifest.card_path)
            except (OSError, UnicodeDecodeError):
                pass
        from longformer2vec.models import card_path, default_card

        packaged = card_path(manifest.model_id)
        if packaged is not None:
            return load_card(packaged)
        return parse_card(default_card(manifest.model_id, manifest.vector_length))

    # --------------------------------------------------------------- properties
    @property
    def model_dir(self) -> Path:
        return self._model_dir

    @property
    def manifest(self) -> Manifest:
        return self._manifest

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
            f"precision={self._manifest.precision!r}, pooling={self.pooling!r}, "
            f"global_attention={self.global_attention!r}, normalize={self.normalize}, "
            f"providers={self.providers})"
        )

    # ------------------------------------------------------------------ public
    def encode(self, text: str | list[str]) -> list[float] | list[list[float]]:
        """Embed one string (-> list[float]) or a list of strings (-> list[list[float]], via bulk_encode)."""
        if isinstance(text, (list, tuple)):
            return self.bulk_encode(list(text))
        if not isinstance(text, str):
            raise TypeError(f"text must be str or list[str], got {type(text).__name__}")
        return self.encode_numpy([text])[0].tolist()

    def bulk_encode(self, texts: list[str], batch_size: int | None = None) -> list[list[float]]:
        """Embed many strings; output order matches input order."""
        return self.encode_numpy(texts, batch_size=batch_size).tolist()

    def encode_numpy(self, texts: Iterable[str], batch_size: int | None = None) -> np.ndarray:
        """Core embedding path: float32 array [len(texts), vector_length]."""
        return self.encode_numpy_with_token_counts(texts, batch_size)[0]

    embed = encode_numpy

    # ---------------------------------------------------------------- internals
    @staticmethod
    def _validate_texts(texts: Iterable[str]) -> list[str]:
        if isinstance(texts, (str, bytes, bytearray)) or not isinstance(texts, Iterable):
            raise TypeError(f"texts must be a list of str, got {type(texts).__name__}")
        items = list(texts)
        for i, x in enumerate(items):
            if not isinstance(x, str):
                raise TypeError(f"texts[{i}] must be str, got {type(x).__name__}")
        return items

    def _make_pieces(self, encodings: Sequence[Encoding]) -> list[_Piece]:
        """Turn encodings into model rows, splitting over-long ones into special-wrapped windows."""
        pieces: list[_Piece] = []
        limit = self.max_length
        for idx, enc in enumerate(encodings):
            ids = list(enc.ids)
            if not ids:
                raise Longformer2VecError(
                    f"texts[{idx}] produced no tokens; the tokenizer has no post-processor adding specials"
                )
            if len(ids) <= limit:
                pieces.append(_Piece(idx, ids))
                continue
            start, end = content_span(enc.special_tokens_mask)
            head, content, tail = ids[:start], ids[start:end], ids[end:]
            chunk_len = limit - len(head) - len(tail)
            if chunk_len < 1:
                raise Longformer2VecError(
                    f"max_length {limit} leaves no room next to {len(head) + len(tail)} specials"
                )
            for chunk in split_long(content, chunk_len, self.chunk_overlap):
                pieces.append(_Piece(idx, head + chunk + tail))
        return pieces

    def _run_pieces(self, pieces: list[_Piece], batch_size: int) -> np.ndarray:
        """Run rows sorted by length (less padding), then scatter results back to piece order."""
        out = np.zeros((len(pieces), self.vector_length), dtype=np.float32)
        multiple = self._manifest.pad_multiple
        lengths = [len(piece.ids) for piece in pieces]
        for batch in token_budget_batches(lengths, batch_size, self.max_batch_tokens, multiple):
            seqs = [pieces[i].ids for i in batch]
            longest = max(len(s) for s in seqs)
            # Never pad past max_length just to hit the multiple; the graph pads internally anyway.
            mult = multiple if padded_width(longest, multiple) <= self.max_length else 1
            ids, mask = pad_batch(seqs, self._manifest.pad_token_id, mult)
            global_mask = np.zeros_like(ids)
            if self.global_attention == "cls":
                global_mask[:, 0] = 1
            hidden, pooled = self._session.run(ids, mask, global_mask, need_hidden=self.pooling == "cls")
            vectors = pooled if hidden is None else hidden[:, 0, :]
            if vectors.shape[-1] != self.vector_length:
                raise ModelLoadError(
                    f"{self._manifest.graph_path} produced vectors of length {vectors.shape[-1]}, "
                    f"manifest says {self.vector_length}"
                )
            out[batch] = vectors
        return out

    def _combine(self, pieces: list[_Piece], vectors: np.ndarray, n_texts: int) -> np.ndarray:
        """Token-count-weighted mean of each text's window vectors (identity for single-window texts)."""
        sums = np.zeros((n_texts, self.vector_length), dtype=np.float64)
        weights = np.zeros(n_texts, dtype=np.float64)
        for piece, vec in zip(pieces, vectors, strict=True):
            w = float(len(piece.ids))
            sums[piece.text_index] += w * vec
            weights[piece.text_index] += w
        return (sums / weights[:, None]).astype(np.float32)

    # ------------------------------------------------------------ corpus support
    def encode_numpy_with_token_counts(
        self, texts: Iterable[str], batch_size: int | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """`encode_numpy` plus each text's token count (specials included, before windowing).

        The counts come from the same tokenization as the vectors, so corpus tools can report
        tokens/s without tokenizing every document twice.
        """
        items = self._validate_texts(texts)
        encodings = self._tokenizer.encode_batch(items) if items else []
        counts = np.array([len(enc.ids) for enc in encodings], dtype=np.int64)
        return self.encode_encodings(encodings, batch_size), counts

    def encode_encodings(self, encodings: Sequence[Encoding], batch_size: int | None = None) -> np.ndarray:
        """Vectors of texts the caller has already tokenized with :attr:`tokenizer` (``Encoding``s, specials
        included), as :meth:`encode_numpy` would return them: the server counts and checks each
        request's tokens before queueing it, and hands the same encodings on instead of tokenizing twice.
        """
        if not encodings:
            return np.zeros((0, self.vector_length), dtype=np.float32)
        size = self.batch_size if batch_size is None else batch_size
        _check_int("batch_size", size, minimum=1)
        pieces = self._make_pieces(encodings)
        out = self._combine(pieces, self._run_pieces(pieces, size), len(encodings))
        return l2_normalize(out) if self.normalize else out
