"""The exporter's ranking figures as a table, for the exporter's log and ``longformer2vec info``."""

from __future__ import annotations

from typing import Any


def format_ranking_table(rows: list[dict[str, Any]], label: str) -> str:
    """One line per embedded text set (without / with global attention on ``<s>``)."""
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
