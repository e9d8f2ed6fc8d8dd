"""The test run's own account of what it did not run: every skip reason with its count, and the one
command that builds the environments the skipped tests wanted (printed by `conftest.pytest_terminal_summary`).

Without it `pytest -q` ends with "N skipped" and a reader cannot tell a skip for a missing consumer
environment from a skip by design.
"""

from __future__ import annotations

from collections import Counter

from tests.doc_blocks import SKIPPED as SKIPPED_DOC_BLOCKS

# (words that mark a skip reason as this environment's, what builds that environment)
BUILDERS = (
    (
        (".ci/consumers.sh", "LONGFORMER2VEC_NODE_CONSUMER_DIR"),
        'eval "$(bash .ci/consumers.sh)"  # sentence-transformers, optimum, fastembed, transformers.js',
    ),
    (
        ("clients/node/node_modules",),
        "(cd clients/node && ONNXRUNTIME_NODE_INSTALL=skip npm ci)  # the Node client",
    ),
)


def _reason(report) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2]).removeprefix("Skipped: ")
    return str(longrepr)


def summary_lines(skipped_reports) -> list[str]:
    """Lines for the terminal summary: skip reasons by count, then the commands that build what is missing."""
    reasons = Counter(_reason(report) for report in skipped_reports)
    lines = [f"{count:3d} skipped: {reason}" for reason, count in reasons.most_common()]
    builders = [
        command for marks, command in BUILDERS if any(mark in reason for reason in reasons for mark in marks)
    ]
    if builders:
        lines += [
            "",
            "Build the missing environments, then rerun (bash .ci/run does all of it in a fresh venv):",
        ]
        lines += [f"    {command}" for command in builders]
    if SKIPPED_DOC_BLOCKS:
        lines += ["", "Documentation blocks not run, and why:"]
        lines += [f"    {entry}" for entry in SKIPPED_DOC_BLOCKS]
    return lines
