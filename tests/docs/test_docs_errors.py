"""docs/troubleshooting.md covers every error the runtime raises: for each `raise` of ModelLoadError,
CorpusError or ApiError under runtime/, some literal part of its message (10 characters or more)
appears on the page. A new error without a troubleshooting entry fails here."""

from __future__ import annotations

import ast

from tests.doc_blocks import REPO_ROOT

ROOT = REPO_ROOT
ERRORS = {"ModelLoadError": 0, "CorpusError": 0, "ApiError": 1}  # class -> index of the message argument
MIN_FRAGMENT = 10


def _literal_parts(node: ast.AST) -> list[str]:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.JoinedStr):
        return [part for value in node.values for part in _literal_parts(value)]
    if isinstance(node, ast.BinOp):
        return _literal_parts(node.left) + _literal_parts(node.right)
    return []


def error_messages() -> list[tuple[str, list[str]]]:
    """(where, literal fragments of the message) for each error construction with a literal message."""
    found = []
    for path in sorted((ROOT / "runtime").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)):
                continue
            index = ERRORS.get(node.func.id)
            if index is None or len(node.args) <= index:
                continue
            parts = [" ".join(p.split()).strip(" :;,.'\"()[]") for p in _literal_parts(node.args[index])]
            parts = [p for p in parts if len(p) >= MIN_FRAGMENT]
            if parts:  # a message passed through from elsewhere (a variable) is covered where it is made
                found.append((f"{path.relative_to(ROOT)}:{node.lineno}", parts))
    return found


def test_every_runtime_error_has_a_troubleshooting_entry() -> None:
    page = " ".join((ROOT / "docs" / "troubleshooting.md").read_text(encoding="utf-8").split())
    messages = error_messages()
    assert len(messages) >= 30, messages  # the scan finds the errors (a broken scan would pass vacuously)
    missing = [f"{where}: {parts[0]!r}" for where, parts in messages if not any(p in page for p in parts)]
    assert not missing, "errors without an entry in docs/troubleshooting.md:\n" + "\n".join(missing)
