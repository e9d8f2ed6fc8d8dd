"""ONNX Runtime session wrapper.

Works with either the `onnxruntime` or the `onnxruntime-gpu` wheel: both provide the same `onnxruntime`
module, so they must not be installed side by side (GPU users install the `longformer2vec-gpu`
distribution, which depends on `onnxruntime-gpu` only; see packaging/gpu/build.py).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from .common import graph_feeds
from .contract import (
    ATTENTION_MASK,
    GLOBAL_ATTENTION_MASK,
    GRAPH_OUTPUTS,
    INPUT_IDS,
    LAST_HIDDEN_STATE,
    SENTENCE_EMBEDDING,
    GraphEntry,
)
from .errors import ModelLoadError

ProviderSpec = str | tuple[str, dict[str, Any]]

CPU = "CPUExecutionProvider"
ALLOW_SPINNING = "session.intra_op.allow_spinning"  # session config key; "0" = threads sleep when idle
CUDA = "CUDAExecutionProvider"


def onnxruntime_distributions() -> list[str]:
    """Installed wheels that provide the `onnxruntime` module (more than one breaks it)."""
    from importlib.metadata import PackageNotFoundError, version

    found = []
    for name in ("onnxruntime", "onnxruntime-gpu"):
        try:
            version(name)
        except PackageNotFoundError:
            continue
        found.append(name)
    return found


def warn_if_onnxruntime_clash() -> None:
    """Both wheels installed: whichever was installed last owns the module files; say how to fix it."""
    if len(onnxruntime_distributions()) > 1:
        warnings.warn(
            "both onnxruntime and onnxruntime-gpu are installed; they overwrite each other's files. "
            "Keep one: `pip uninstall -y onnxruntime onnxruntime-gpu && pip install onnxruntime-gpu` "
            "(or `onnxruntime` for CPU only).",
            RuntimeWarning,
            stacklevel=2,
        )


def default_providers() -> list[str]:
    """CUDA first when this onnxruntime build offers it, always CPU as fallback."""
    available = ort.get_available_providers()
    return ([CUDA] if CUDA in available else []) + [CPU]


def _provider_name(p: ProviderSpec) -> str:
    return p if isinstance(p, str) else p[0]


def provider_names(providers: Sequence[ProviderSpec]) -> list[str]:
    return [_provider_name(p) for p in providers]


def device_of(providers: Sequence[ProviderSpec]) -> str:
    """``"cuda"`` when CUDA runs the graph (the first provider), else ``"cpu"``."""
    return "cuda" if providers and _provider_name(providers[0]) == CUDA else "cpu"


def split_available(providers: Sequence[ProviderSpec]) -> tuple[list[ProviderSpec], list[str]]:
    """The requested providers this onnxruntime build offers, and the names of those it lacks (ONNX
    Runtime would drop them with a warning of its own; the runtime says it once, naming both)."""
    available = set(ort.get_available_providers())
    kept = [p for p in providers if _provider_name(p) in available]
    dropped = [_provider_name(p) for p in providers if _provider_name(p) not in available]
    return kept, dropped


def session_providers(
    graph: GraphEntry, providers: Sequence[ProviderSpec] | None
) -> list[ProviderSpec] | None:
    """The providers a graph's session asks for. A ``fused`` graph (ONNX Runtime's LongformerAttention)
    has a CUDA kernel only: a CPU-only session is refused up front, and CUDA is asked for explicitly so
    that a failed CUDA start is an error, not a CPU fallback that cannot run the graph."""
    if graph.layout != "fused":
        return None if providers is None else list(providers)
    chosen = list(providers) if providers is not None else default_providers()
    if device_of(chosen) != "cuda":
        raise ModelLoadError(
            f"{graph.path} is a 'fused' graph (ONNX Runtime's LongformerAttention), which runs on the CUDA "
            f"provider only, and this session would run on {chosen or 'the CPU'}: install longformer2vec-gpu "
            "on a CUDA machine, or load an export with layout 'cpu' or 'gpu'"
        )
    return chosen


def wants_memory_pattern(graph: GraphEntry, device: str) -> bool:
    """ONNX Runtime's memory pattern (buffers planned from earlier runs of a shape), except for graphs
    that take global tokens on the CPU: they size their global slots with TopK, a value that becomes a
    shape, and the planned buffers then grew on repeated long calls (benchmarks/RESULTS.md)."""
    return not (graph.global_tokens and device == "cpu")


def optimized_graph_path(cache_dir: Path, graph_sha256: str, providers: Sequence[ProviderSpec]) -> Path:
    """Where the pre-optimized copy of a graph lives: keyed by graph, onnxruntime version and providers
    (fusions differ by provider and by onnxruntime release)."""
    tag = "-".join(_provider_name(p).removesuffix("ExecutionProvider").lower() for p in providers)
    return cache_dir / "optimized" / f"{graph_sha256[:24]}-ort{ort.__version__}-{tag}.onnx"


class OnnxSession:
    """Owns one `ort.InferenceSession` and knows the contract's input/output names."""

    def __init__(
        self,
        graph_path: str | Path,
        providers: Sequence[ProviderSpec] | None = None,
        session_options: ort.SessionOptions | None = None,
        intra_op_num_threads: int | None = None,
        use_io_binding: bool = False,
        optimized_cache: Path | None = None,
        memory_pattern: bool = True,
        spin: bool = True,
    ) -> None:
        """``memory_pattern=False`` turns off ONNX Runtime's memory pattern (buffers planned from earlier
        runs of a shape) and ``spin=False`` its intra-op threads' busy-waiting, in the options this
        session makes itself; a caller's ``session_options`` are used as given."""
        warn_if_onnxruntime_clash()
        options = session_options or ort.SessionOptions()
        if session_options is None and not memory_pattern:
            options.enable_mem_pattern = False
        if session_options is None and not spin:
            options.add_session_config_entry(ALLOW_SPINNING, "0")
        if intra_op_num_threads is not None:
            options.intra_op_num_threads = int(intra_op_num_threads)
        self.requested_providers = list(providers) if providers is not None else default_providers()
        # Our own options only: a caller's session_options may ask for other optimization levels.
        self.optimized_cache = optimized_cache if session_options is None else None
        # Why the session runs elsewhere than asked (None when it runs where asked): the caller that chose
        # the graph for the asked device decides again from :attr:`providers` and says so once.
        self.fallback: str | None = None
        try:
            self.session = self._create_cached(graph_path, options, self.requested_providers)
        except ModelLoadError as exc:
            if providers is not None or self.requested_providers == [CPU]:
                raise
            # onnxruntime-gpu without a usable device: the default choice falls back to the CPU.
            self.fallback = f"{self.requested_providers[0]} could not start ({str(exc).splitlines()[0]})"
            self.session = self._create(graph_path, options, [CPU])
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.output_names = [o.name for o in self.session.get_outputs()]
        if any(name not in self.output_names for name in GRAPH_OUTPUTS):
            raise ModelLoadError(f"{graph_path} outputs {self.output_names}, expected {list(GRAPH_OUTPUTS)}")
        self.device = device_of(self.providers)
        if self.fallback is None and self.providers[0] != _provider_name(self.requested_providers[0]):
            # ORT drops a provider that fails to start (onnxruntime-gpu without CUDA) and goes on
            self.fallback = f"{_provider_name(self.requested_providers[0])} did not start"
        self.device_id = self._device_id()
        # Off unless asked for: on CUDA it measured no faster (benchmarks/RESULTS.md, CUDA section);
        # fetching only the pooled output is what saves the copy.
        self.use_io_binding = bool(use_io_binding)

    def _device_id(self) -> int:
        options = self.session.get_provider_options().get(self.providers[0], {})
        try:
            return int(options.get("device_id", 0))
        except (TypeError, ValueError):
            return 0

    def _create_cached(
        self, graph_path: str | Path, options: ort.SessionOptions, providers: list
    ) -> ort.InferenceSession:
        """Start from the cached pre-optimized graph when there is one, else from the graph (and write
        the cache for next time).

        The copy is optimized at ORT's *extended* level (fusions, no hardware-specific layouts), so it
        is portable across CPUs; loading it skips most of the session-creation work (benchmarks/RESULTS.md,
        start-up). A copy that fails to load is deleted and the original graph is used.
        """
        cache = self.optimized_cache
        if cache is not None and cache.is_file():
            try:
                return self._create(cache, options, providers)
            except ModelLoadError:
                with contextlib.suppress(OSError):
                    cache.unlink()
        session = self._create(graph_path, options, providers)
        if cache is not None and session.get_providers()[0] == _provider_name(providers[0]):
            self._write_optimized(graph_path, cache, providers)
        return session

    @staticmethod
    def _write_optimized(graph_path: str | Path, cache: Path, providers: list) -> None:
        """Save the extended-level optimized graph atomically; a cache that cannot be written is skipped."""
        tmp: str | None = None
        try:
            cache.parent.mkdir(parents=True, exist_ok=True)
            handle, tmp = tempfile.mkstemp(prefix=f".{cache.name}.", suffix=".tmp", dir=cache.parent)
            os.close(handle)
            options = ort.SessionOptions()
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
            options.optimized_model_filepath = tmp
            ort.InferenceSession(str(graph_path), sess_options=options, providers=providers)
            os.replace(tmp, cache)
        except Exception as exc:  # noqa: BLE001 - a read-only cache or failed save must not stop loading
            warnings.warn(
                f"could not cache the optimized graph at {cache}: {exc}", RuntimeWarning, stacklevel=3
            )
            if tmp is not None:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)

    @staticmethod
    def _create(graph_path: str | Path, options: ort.SessionOptions, providers: list) -> ort.InferenceSession:
        try:
            return ort.InferenceSession(str(graph_path), sess_options=options, providers=providers)
        except Exception as exc:  # ORT raises assorted private exception types
            raise ModelLoadError(f"onnxruntime could not load {graph_path}: {exc}") from exc

    @property
    def providers(self) -> list[str]:
        """Providers the session actually got (ORT silently drops unavailable ones)."""
        return list(self.session.get_providers())

    def run(
        self, ids: np.ndarray, mask: np.ndarray, global_mask: np.ndarray, *, need_hidden: bool = True
    ) -> tuple[np.ndarray | None, np.ndarray]:
        """Run one padded batch; returns (last_hidden_state or None, sentence_embedding) as float32.

        ``need_hidden=False`` fetches only the pooled vectors: on CUDA that skips copying the
        ``[batch, sequence, hidden]`` states (12 MB per 4096-token row) back to the host.
        """
        feeds = {INPUT_IDS: ids, ATTENTION_MASK: mask, GLOBAL_ATTENTION_MASK: global_mask}
        feeds = {
            k: np.ascontiguousarray(v, dtype=np.int64)
            for k, v in graph_feeds(feeds, self.input_names).items()
        }
        names = [LAST_HIDDEN_STATE, SENTENCE_EMBEDDING] if need_hidden else [SENTENCE_EMBEDDING]
        outputs = self._run_bound(feeds, names) if self.use_io_binding else self.session.run(names, feeds)
        pooled = np.asarray(outputs[-1], dtype=np.float32)
        return (np.asarray(outputs[0], dtype=np.float32) if need_hidden else None), pooled

    def _run_bound(self, feeds: dict[str, np.ndarray], names: list[str]) -> list[np.ndarray]:
        """IO binding: inputs copied to the device once, outputs left there until fetched, so ORT
        makes no extra staging copies or synchronisations around the run."""
        binding = self.session.io_binding()
        for name, value in feeds.items():
            binding.bind_cpu_input(name, value)
        for name in names:
            binding.bind_output(name, self.device, self.device_id)
        self.session.run_with_iobinding(binding)
        return binding.copy_outputs_to_cpu()
