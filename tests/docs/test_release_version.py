"""One version number for the Python distributions and the npm package, with a changelog entry for it."""

from __future__ import annotations

import json
import re

from tests.doc_blocks import REPO_ROOT

ROOT = REPO_ROOT


def _pyproject_version() -> str:
    match = re.search(r'^version = "([^"]+)"$', (ROOT / "pyproject.toml").read_text(), re.MULTILINE)
    assert match, "pyproject.toml has no version line"
    return match[1]


def test_npm_package_version_is_the_python_version() -> None:
    package = json.loads((ROOT / "clients" / "node" / "package.json").read_text())
    lock = json.loads((ROOT / "clients" / "node" / "package-lock.json").read_text())
    version = _pyproject_version()
    assert package["version"] == version, (package["version"], version)
    assert lock["version"] == lock["packages"][""]["version"] == version


def test_changelog_has_an_entry_for_the_version() -> None:
    headings = re.findall(r"^## (\S+)", (ROOT / "CHANGELOG.md").read_text(), re.MULTILINE)
    assert _pyproject_version() in headings, headings


def test_source_tree_fallback_version_is_the_version() -> None:
    """`longformer2vec.__version__` falls back to a literal when the package runs uninstalled."""
    text = (ROOT / "runtime" / "__init__.py").read_text()
    fallbacks = re.findall(r'^\s+__version__ = "([^"]+)"', text, re.MULTILINE)
    assert fallbacks == [_pyproject_version()], fallbacks
