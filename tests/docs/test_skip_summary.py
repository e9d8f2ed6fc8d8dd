"""The test run's summary names each skip reason and the command that builds a missing environment."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from tests import skip_summary
from tests.skip_summary import summary_lines


@pytest.fixture(autouse=True)
def _no_doc_block_skips(monkeypatch: pytest.MonkeyPatch) -> None:
    """The documentation blocks skipped earlier in the same run (whose reasons may name any command) are
    not part of what these tests check."""
    monkeypatch.setattr(skip_summary, "SKIPPED_DOC_BLOCKS", [])


def _skip(reason: str) -> SimpleNamespace:
    return SimpleNamespace(longrepr=("tests/x.py", 1, f"Skipped: {reason}"))


def test_missing_environments_are_named_with_their_build_command() -> None:
    reports = [
        _skip(
            "LONGFORMER2VEC_NODE_CONSUMER_DIR is not set or node is missing: transformers.js is not installed"
        ),
        _skip(
            "LONGFORMER2VEC_NODE_CONSUMER_DIR is not set or node is missing: transformers.js is not installed"
        ),
        _skip("/repo/clients/node/node_modules is absent (cd clients/node && npm ci)"),
    ]
    text = "\n".join(summary_lines(reports))
    assert "  2 skipped: LONGFORMER2VEC_NODE_CONSUMER_DIR is not set" in text
    assert 'eval "$(bash .ci/consumers.sh)"' in text
    assert "ONNXRUNTIME_NODE_INSTALL=skip npm ci" in text


def test_a_skip_by_design_names_no_build_command() -> None:
    text = "\n".join(summary_lines([_skip("Python >= 3.11")]))
    assert "  1 skipped: Python >= 3.11" in text and "consumers.sh" not in text
