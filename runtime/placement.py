"""Where a model runs and which of its graphs runs there.

The device is decided once, from the providers the ONNX session really got, and the graph from the
device: int8 on the CPU, fp16 on CUDA, else what the directory holds. A session asked for CUDA can end
up on the CPU (a CPU-only onnxruntime, or onnxruntime-gpu on a machine whose CUDA cannot start); the
graph chosen for CUDA is then replaced by the CPU's choice, with one warning naming both.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .contract import GraphEntry, Manifest
from .errors import ModelLoadError
from .session import (
    CPU,
    OnnxSession,
    ProviderSpec,
    default_providers,
    device_of,
    provider_names,
    split_available,
    wants_memory_pattern,
)

log = logging.getLogger("longformer2vec")

# What a session prefers when the caller names no precision: int8 on the CPU, fp16 on CUDA.
CPU_PRECISION_ORDER = ("int8", "fp32", "fp16")
CUDA_PRECISION_ORDER = ("fp16", "fp32", "int8")
PRECISION_ORDER = {"cpu": CPU_PRECISION_ORDER, "cuda": CUDA_PRECISION_ORDER}


def preferred_precision(device: str) -> str:
    """The precision a device runs best: what a model exported on first use gets."""
    return PRECISION_ORDER[device][0]


def expected_device(providers: Sequence[ProviderSpec] | None) -> str:
    """The device a session asked for ``providers`` should get, before it is made: the first provider
    this onnxruntime build offers (used to export a model on first use; the session has the last word)."""
    kept, _ = split_available(providers if providers is not None else default_providers())
    return device_of(kept)


def _export_hint(manifest: Manifest, precision: str, global_tokens: bool) -> str:
    flags = f"--precision {precision}" + (" --global-tokens" if global_tokens else "")
    return (
        f"add it with `longformer2vec export {manifest.model_id} --output {manifest.model_dir} {flags}` "
        "(exporting into an existing directory adds the graph)"
    )


def choose_graph(manifest: Manifest, precision: str | None, global_attention: str, device: str) -> GraphEntry:
    """The graph a session on ``device`` (``"cpu"`` or ``"cuda"``) runs: `precision` if given, else the
    device's preference among those present. `global_attention="cls"` needs a graph that takes global
    tokens; `"none"` prefers one that does not (fewer nodes) and else feeds zeros to one that does. On
    the CPU a CUDA-only ``fused`` graph comes last (the session then refuses it by name)."""
    order = PRECISION_ORDER[device]
    needs_global = global_attention != "none"
    usable = [g for g in manifest.graphs if g.global_tokens or not needs_global]
    if precision is not None:
        usable = [g for g in usable if g.precision == precision]
    if not usable:
        wanted = precision or order[0]
        what = f"{precision + ' graph' if precision else 'graph'}" + (
            " that takes global tokens" if needs_global else ""
        )
        raise ModelLoadError(
            f"{manifest.model_dir} has no {what} (it holds: {manifest.graph_summary()}); "
            f"{_export_hint(manifest, wanted, needs_global)}"
        )
    return min(
        usable,
        key=lambda g: (
            device == "cpu" and g.layout == "fused",
            order.index(g.precision),
            g.global_tokens != needs_global,
        ),
    )


@dataclass(frozen=True)
class Placement:
    """The graph a model runs and the session running it."""

    graph: GraphEntry
    session: OnnxSession

    @property
    def device(self) -> str:
        return self.session.device


OpenSession = Callable[[GraphEntry, "list[ProviderSpec] | None", bool], OnnxSession]


def place(
    manifest: Manifest,
    precision: str | None,
    global_attention: str,
    providers: Sequence[ProviderSpec] | None,
    open_session: OpenSession,
) -> Placement:
    """Open a session on the graph for the device its providers give, once.

    ``open_session(graph, providers, memory_pattern)`` checks and opens one graph (``providers`` None:
    the defaults). Providers this onnxruntime lacks are dropped before asking; when the session still
    runs elsewhere than asked, the graph is chosen again for the device it got and, if that is another
    graph, opened there instead. Either way one warning names the providers and graphs of both.
    """
    requested = list(providers) if providers is not None else None
    asked = requested if requested is not None else default_providers()
    kept, dropped = split_available(asked)
    if requested is not None and not kept:
        kept = [CPU]  # every provider asked for is missing: the CPU, which every build has
    expected = device_of(kept)
    graph = choose_graph(manifest, precision, global_attention, expected)
    session = open_session(
        graph, kept if requested is not None else None, wants_memory_pattern(graph, expected)
    )
    actual = session.device
    reason = "; ".join(
        [*(f"{name} is not in this onnxruntime build" for name in dropped), *filter(None, [session.fallback])]
    )
    if actual == expected and not dropped:
        return Placement(graph, session)
    better = choose_graph(manifest, precision, global_attention, actual)
    pattern = wants_memory_pattern(better, actual)
    reopen = better is not graph or pattern != wants_memory_pattern(graph, expected)
    if better is not graph:
        what = f"running the {better.name} graph ({better.file}) instead of {graph.name} ({graph.file})"
    else:
        what = f"running the {graph.name} graph ({graph.file})"
    log.warning(
        "asked for %s, the session runs on %s (%s): %s",
        provider_names(asked)[0],
        session.providers[0],
        reason or "onnxruntime fell back",
        what,
    )
    if reopen:
        session = open_session(better, session.providers, pattern)
    return Placement(better, session)
