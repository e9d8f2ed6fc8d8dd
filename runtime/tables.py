"""The exporter's figures as fixed-width tables: its progress log and `longformer2vec info` print them
from the rows a graph's manifest entry stores (:mod:`.contract`)."""

from __future__ import annotations

from typing import Any


def format_parity_table(rows: list[dict[str, Any]], label: str) -> str:
    """Fixed-width table of a graph's parity rows (one per case), as the exporter prints and stores them."""
    lines = [
        f"parity {label} vs PyTorch eager fp32",
        (
            f"{'case':<22}{'lengths':<24}{'global':<8}{'tok max|d|':>12}{'tok min cos':>13}"
            f"{'pool max|d|':>13}{'pool cos':>11}{'torch s':>9}{'onnx s':>8}"
        ),
    ]
    for r in rows:
        lengths = ",".join(map(str, r["lengths"]))
        lines.append(
            f"{r['case']:<22}{lengths:<24}{'cls' if r['global_first_token'] else '-':<8}"
            f"{r['token_max_abs']:>12.2e}{r['token_min_cosine']:>13.6f}{r['pooled_max_abs']:>13.2e}"
            f"{r['pooled_min_cosine']:>11.6f}{r['seconds_torch']:>9.2f}{r['seconds_onnx']:>8.2f}"
        )
    return "\n".join(lines)


def format_ranking_table(rows: list[dict[str, Any]], label: str) -> str:
    """A graph's ranking rows (one per text set: without / with global attention on ``<s>``), as the
    exporter prints and stores them."""
    texts = rows[0]["texts"] if rows else 0
    lines = [
        f"ranking {label} vs PyTorch eager fp32 ({texts} texts; centered = mean reference vector removed)",
        (
            f"{'global':<8}{'tokens':<10}{'plain min':>11}{'ctr min':>9}{'ctr med':>9}{'spearman':>10}"
            f"{'top1':>7}{'top5':>7}"
        ),
    ]
    for r in rows:
        tokens = f"{r['tokens_min']}-{r['tokens_max']}"
        lines.append(
            f"{'cls' if r['global_first_token'] else '-':<8}{tokens:<10}{r['plain_min_cosine']:>11.6f}"
            f"{r['centered_min_cosine']:>9.4f}{r['centered_median_cosine']:>9.4f}{r['spearman']:>10.4f}"
            f"{r['top1_agreement']:>7.2f}{r['top5_agreement']:>7.2f}"
        )
    return "\n".join(lines)
