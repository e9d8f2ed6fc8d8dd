"""cpu_bench's Markdown: the `targets` table that opens RESULTS.md and the `cpu` section's detail.

Every figure comes from one run's report (benchmarks/data/cpu.json), except the H100 row, read from
benchmarks/data/cuda_h100.json (written by cuda_bench.py), and the export-time parity figures, read
from the exported directory's manifest.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

HERE = Path(__file__).resolve().parent
TARGET_RATIO = 6.0
PEERS = (  # (key in report["paths"], label); per-length paths hold one process per length
    ("eager", "PyTorch eager fp32"),
    ("eager-int8", "PyTorch eager + `quantize_dynamic` (int8 Linear)"),
    ("hf-traced", "HF `torch.onnx.export`, ONNX Runtime fp32 (traced per length)"),
    ("openvino", "OpenVINO `convert_model`, CPU defaults (traced per length)"),
    ("openvino-int8", "OpenVINO + `nncf.quantize` static int8 (traced per length)"),
    ("fp32", "longformer2vec fp32"),
    ("int8", "longformer2vec int8"),
)
PER_LENGTH = ("hf-traced", "openvino", "openvino-int8")
BUCKETS = ((0, 128), (129, 512), (513, 1024), (1025, 2048), (2049, 4096), (4097, 10**9))


def _at(report: dict, key: str, length: int) -> dict | None:
    """The latency stats (and the process's other figures) of path ``key`` at ``length``, or None."""
    res = report["paths"].get(key) or {}
    if key in PER_LENGTH:
        res = res.get(str(length)) or {}
    if "error" in res or str(length) not in res.get("latency", {}):
        return None
    return {
        **res["latency"][str(length)],
        "cosine": res.get("pooled_cosine", {}).get(str(length)),
        "res": res,
    }


def num(x: float) -> str:
    """Three significant digits below 100, whole numbers with thousands separators above."""
    return f"{x:,.0f}" if x >= 100 else f"{x:.3g}"


def _ms(stats: dict | None) -> str:
    if not stats:
        return "-"
    return f"{num(stats['median_ms'])} ({num(stats['min_ms'])}-{num(stats['max_ms'])})"


def _error(report: dict, key: str, length: int) -> str | None:
    res = report["paths"].get(key) or {}
    res = res.get(str(length), {}) if key in PER_LENGTH else res
    return res.get("error")


def ratio(report: dict, key: str, length: int, against: str = "eager") -> float:
    a, b = _at(report, against, length), _at(report, key, length)
    return a["median_ms"] / b["median_ms"] if a and b else math.nan


def _peak_rss(report: dict, key: str, lengths: list[int]) -> float | None:
    if key in PER_LENGTH:
        res = (report["paths"].get(key) or {}).get(str(max(lengths))) or {}
        return res.get("peak_rss_mb")
    res = report["paths"].get(key) or {}
    return res.get("peak_rss_mb_latency", res.get("peak_rss_mb"))


def _min_cosine(report: dict, key: str, lengths: list[int]) -> float | None:
    values = [s["cosine"] for n in lengths if (s := _at(report, key, n)) and s["cosine"] is not None]
    return min(values) if values else None


def bulk_rate(report: dict, key: str) -> float:
    bulk = (report["paths"].get(key) or {}).get("bulk")
    return bulk["docs"] / bulk["seconds"] if bulk else math.nan


def peers_ahead(report: dict) -> tuple[float, str]:
    """Smallest (peer time / our int8 time) over every peer and peer length, and where it is."""
    worst, where = math.inf, "no peer measured"
    for key, label in PEERS:
        if key in ("int8", "fp32"):
            continue
        for n in report["peer_lengths"]:
            r = ratio(report, "int8", n, against=key)
            if not math.isnan(r) and r < worst:
                worst, where = r, f"{label} at {n} tokens"
    return worst, where


# --------------------------------------------------------------------------- targets table


def _parity(report: dict) -> str:
    parity = report.get("parity") or {}
    if not parity:
        return "-"
    return (
        f"int8 pooled cosine >= {parity['int8_pooled_min_cosine']:.5f}, fp32 token max abs "
        f"{parity['fp32_token_max_abs']:.1e} against PyTorch, {parity['cases']} export cases up to "
        f"{parity['longest']} tokens"
    )


def _h100_row() -> str | None:
    path = HERE / "data" / "cuda_h100.json"
    if not path.exists():
        return None
    timings = json.loads(path.read_text())["timings"].get("1 x 4096", {})
    ours, eager = timings.get("ours fp16"), timings.get("eager fp32")
    if not (ours and eager):
        return None
    met = "yes" if ours["median_ms"] <= 8 else "no"
    return (
        f"| H100, fp16, batch 1, 4096 tokens, <= 8 ms | {ours['median_ms']:.1f} ms (eager fp32 "
        f"{eager['median_ms']:.1f} ms); measured on an H100 on an earlier graph | {met} | "
        "`python benchmarks/cuda_bench.py --json benchmarks/data/cuda_h100.json --results` on a GPU |"
    )


def targets_markdown(report: dict, command: str) -> str:
    rerun = "`python benchmarks/cpu_bench.py --results`"
    lines = [
        "## Targets",
        "",
        (
            f"CPU rows: one run of `{command}` ({report['machine']}, {report['threads']} threads, load "
            f"average {report['load_before']} before); detail in the `cpu` section below."
        ),
        "",
        "| target | measured | met? | how to rerun |",
        "|---|---|---|---|",
    ]
    for n in report["peer_lengths"]:
        eager, ours = _at(report, "eager", n), _at(report, "int8", n)
        if eager and ours:
            r = eager["median_ms"] / ours["median_ms"]
            lines.append(
                f"| int8, batch 1, {n} tokens, >= {TARGET_RATIO:.0f}x PyTorch eager | "
                f"{num(ours['median_ms'])} vs {num(eager['median_ms'])} ms: **{r:.2f}x** | "
                f"{'yes' if r >= TARGET_RATIO else 'no'} | {rerun} |"
            )
    worst, where = peers_ahead(report)
    if not math.isinf(worst):
        lines.append(
            f"| int8 ahead of every CPU peer at {', '.join(map(str, report['peer_lengths']))} tokens | "
            f"closest: {where}, **{worst:.2f}x** slower than ours | {'yes' if worst > 1 else 'no'} | {rerun} |"
        )
    rate, eager_rate = bulk_rate(report, "int8"), bulk_rate(report, "eager")
    if not math.isnan(rate):
        bulk = report["paths"]["int8"]["bulk"]
        lines.append(
            f"| `bulk_encode`, mixed corpus, >= {TARGET_RATIO:.0f}x eager's per-document `encode` | "
            f"{rate:.2f} vs {eager_rate:.2f} docs/s: **{rate / eager_rate:.2f}x**; a document's vector alone "
            f"vs in bulk: max abs {bulk['alone_vs_bulk_max_abs']:.1e} | "
            f"{'yes' if rate / eager_rate >= TARGET_RATIO else 'no'} | {rerun} |"
        )
    ours_mb, eager_mb = (
        _peak_rss(report, "int8", report["lengths"]),
        _peak_rss(report, "eager", report["lengths"]),
    )
    if ours_mb and eager_mb:
        lines.append(
            f"| int8 peak RSS up to {max(report['lengths'])} tokens below eager's | {ours_mb:,.0f} vs "
            f"{eager_mb:,.0f} MB | {'yes' if ours_mb < eager_mb else 'no'} | {rerun} |"
        )
    lines.append(f"| parity with PyTorch, checked at export | {_parity(report)} | - | {rerun} (exports) |")
    h100 = _h100_row()
    if h100:
        lines.append(h100)
    return "\n".join(lines)


# --------------------------------------------------------------------------- cpu section


def _latency_table(report: dict) -> list[str]:
    lines = [
        "| tokens | PyTorch eager | HF traced export (at that length) | ours fp32 | ours int8 | int8 vs eager |",
        "|---|---|---|---|---|---|",
    ]
    for n in report["lengths"]:
        traced = "failed" if _error(report, "hf-traced", n) else _ms(_at(report, "hf-traced", n))
        fp32 = _ms(_at(report, "fp32", n)) + f" ({ratio(report, 'fp32', n):.2f}x)"
        cells = [_ms(_at(report, "eager", n)), traced, fp32, _ms(_at(report, "int8", n))]
        lines.append(f"| {n} | " + " | ".join(cells) + f" | {ratio(report, 'int8', n):.2f}x |")
    return lines


def _peer_table(report: dict) -> list[str]:
    lengths = report["peer_lengths"]
    head = " | ".join(f"{n} tokens" for n in lengths)
    lines = [
        f"| path | {head} | pooled cosine vs eager fp32 (min) | peak RSS ({max(lengths)} tokens) |",
        "|---|" + "---|" * (len(lengths) + 2),
    ]
    for key, label in PEERS:
        cells = []
        for n in lengths:
            if _error(report, key, n):
                cells.append("failed")
                continue
            stats = _at(report, key, n)
            r = ratio(report, key, n)
            cells.append(f"{_ms(stats)} ({r:.2f}x)" if stats else "-")
        cos, mb = _min_cosine(report, key, lengths), _peak_rss(report, key, lengths)
        cells += [f"{cos:.5f}" if cos is not None else "-", f"{mb:,.0f} MB" if mb else "-"]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return lines


def _bulk_table(report: dict) -> list[str]:
    lines = [
        (
            "| path | docs/s | tokens/s | vs eager | per-document cosine vs eager (min) | "
            "alone vs bulk, max abs | peak RSS after bulk | start-up |"
        ),
        "|---|---|---|---|---|---|---|---|",
    ]
    eager_rate = bulk_rate(report, "eager")
    for key in ("eager", "fp32", "int8"):
        res = report["paths"].get(key) or {}
        if "error" in res or not res.get("bulk"):
            lines.append(f"| {key} | failed: {res.get('error', 'no bulk run')} | | | | | | |")
            continue
        bulk, rate = res["bulk"], bulk_rate(report, key)
        cos = bulk.get("pooled_cosine_min")
        diff = bulk.get("alone_vs_bulk_max_abs")
        lines.append(
            f"| {key} | {rate:.2f} | {bulk['tokens'] / bulk['seconds']:,.0f} | {rate / eager_rate:.2f}x | "
            f"{'1 (reference)' if key == 'eager' else f'{cos:.5f}'} | "
            f"{'-' if diff is None else f'{diff:.1e}'} | {res['peak_rss_mb']:,.0f} MB | {res['startup_s']:.1f} s |"
        )
    return lines


def _split_table(report: dict) -> list[str]:
    """Where the corpus time goes: eager's and our int8's per-document times by length bucket."""
    eager, ours = report["paths"].get("eager", {}), report["paths"].get("int8", {})
    if not (eager.get("bulk") and ours.get("bulk")):
        return []
    counts, window = report["corpus"]["token_counts"], report["eager_pad_multiple"]
    multiple = ours["bulk"]["pad_multiple"]
    te, to = eager["bulk"]["doc_seconds"], ours["bulk"]["doc_seconds"]
    total_e, total_o = sum(te), sum(to)
    lines = [
        (
            "| length | docs | tokens | eager pads to | ours pads to | eager s | int8 s (each alone) | "
            "int8 vs eager | share of int8 time |"
        ),
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for low, high in BUCKETS:
        idx = [i for i, n in enumerate(counts) if low <= n <= high]
        if not idx:
            continue
        e, o = sum(te[i] for i in idx), sum(to[i] for i in idx)
        tokens = sum(counts[i] for i in idx)
        eager_pad = sum(-(-counts[i] // window) * window for i in idx)
        ours_pad = sum(
            counts[i] if counts[i] <= multiple else -(-counts[i] // multiple) * multiple for i in idx
        )
        lines.append(
            f"| {low}-{min(high, max(counts))} | {len(idx)} | {tokens:,} | {eager_pad:,} | {ours_pad:,} | "
            f"{e:.1f} | {o:.1f} | {e / o:.2f}x | {o / total_o:.0%} |"
        )
    lines.append(
        f"| all | {len(counts)} | {sum(counts):,} | | | {total_e:.1f} | {total_o:.1f} | {total_e / total_o:.2f}x | |"
    )
    return lines


def _per_length_notes(report: dict) -> list[str]:
    notes = []
    for key, label in PEERS:
        if key not in PER_LENGTH:
            continue
        parts = []
        for n, v in (report["paths"].get(key) or {}).items():
            if "error" in v:
                parts.append(f"{n}: failed ({v['error']})")
                continue
            exp = v.get("export", {})
            made = f"export {exp.get('export_s', exp.get('convert_s', 0)):.0f} s"
            if "quantize_s" in exp:
                made += f", nncf.quantize {exp['quantize_s']:.0f} s on {exp['calibration_samples']} samples"
            settings = v.get("settings", {})
            precision = f", inference precision {settings['INFERENCE_PRECISION_HINT']}" if settings else ""
            parts.append(
                f"{n}: {exp.get('nodes', 0):,} nodes, {made}, load {v['startup_s']:.1f} s{precision}"
            )
        if parts:
            notes += ["", f"{label}, per traced length: " + "; ".join(parts) + "."]
    return notes


def _loads(report: dict) -> str:
    """1-minute load average at each timed process's start and its highest while it ran (the process
    itself adds about its thread count)."""
    parts = []
    for key, label in PEERS:
        res = report["paths"].get(key) or {}
        runs = list(res.values()) if key in PER_LENGTH else [res]
        pairs = [
            f"{r['load_start']:.1f} / {r.get('load_max', r['load_end']):.1f}"
            for r in runs
            if "load_start" in r
        ]
        if pairs:
            parts.append(f"{label.split(' (')[0]} {', '.join(pairs)}")
    return "; ".join(parts)


def cpu_markdown(report: dict, command: str, plot: str | None) -> str:
    corpus = report["corpus"]
    lines = [
        f"## CPU (`{command}`)",
        "",
        f"Machine: {report['machine']}; {report['threads']} threads for every path; load average "
        f"{report['load_before']} before, {report['load_after']} after. Versions: "
        + ", ".join(f"{k} {v}" for k, v in report["versions"].items())
        + f". Model: {report['model']}. Each path in its own process; batch 1, the same token ids "
        "(real-looking text) for every path, milliseconds: median (min-max); pooled cosine: mean over the "
        "tokens, against PyTorch eager fp32 on the same ids.",
        "",
        (
            "1-minute load average at the start of each timed process / its highest while the process ran "
            f"(the process itself adds about {report['threads']}): {_loads(report)}."
        ),
        "",
        *_latency_table(report),
        "",
        (
            "Peers at batch 1 (ratio against PyTorch eager fp32; peak RSS: the process that ran the "
            "longest length; per-length paths: that length's process):"
        ),
        "",
        *_peer_table(report),
        *_per_length_notes(report),
        "",
        (
            f"Mixed corpus: {corpus['docs']} documents, {corpus['tokens']:,} tokens (lengths log-uniform "
            f"50-{corpus['longest']}, median {corpus['median_tokens']}); eager runs one `encode` per "
            "document (VectorHub's correct path; its `bulk_encode` pads every batch to 4096), ours "
            "`bulk_encode` (int8: one row per ONNX call), then each document alone, whose vector must "
            "equal its bulk one within 1e-5:"
        ),
        "",
        *_bulk_table(report),
        "",
        (
            "Where the corpus time goes (per-document seconds by length; eager pads to a multiple of its "
            f"attention window, {report['eager_pad_multiple']}; ours to a multiple of its pad multiple "
            "above one block, and not at all up to one block):"
        ),
        "",
        *_split_table(report),
    ]
    if plot:
        lines += ["", f"![latency against length]({plot})"]
    return "\n".join(lines)


def plot_latency(report: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for key, label in PEERS:
        points = [
            (n, s["median_ms"] / 1000) for n in report["lengths"] if (s := _at(report, key, n)) is not None
        ]
        if points:
            ax.plot(*zip(*points, strict=True), marker="o", label=label.replace("`", ""))
    ax.set_xlabel("tokens (batch 1)")
    ax.set_ylabel("seconds (median)")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xticks(report["lengths"], [str(n) for n in report["lengths"]])
    ax.grid(True, which="both", alpha=0.3)
    ax.set_title(f"{report['model']}: CPU, {report['threads']} threads", fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
