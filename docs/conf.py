"""Sphinx configuration of the documentation site (MyST Markdown pages, API pages from the docstrings).

Build: python -m sphinx -W -b html docs docs/_build/html   (needs the `docs` extra)
"""

from __future__ import annotations

import re

from longformer2vec import __version__

project = "longformer2vec"
author = "longformer2vec contributors"
copyright = "longformer2vec contributors"
release = __version__
version = __version__

extensions = ["myst_parser", "sphinx.ext.autodoc", "sphinx.ext.napoleon"]
source_suffix = {".md": "markdown"}
exclude_patterns = ["_build"]
myst_heading_anchors = 3

# The docstrings write code in single backticks (Markdown style) and use Sphinx roles for links
# (:func:, :class:, :data:); the default role renders the plain backticks as inline code.
default_role = "code"

autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"members": True, "show-inheritance": False}
# Names the docstrings mention that autodoc cannot resolve to a documented object are not errors.
nitpicky = False

html_theme = "furo"
html_title = f"longformer2vec {__version__}"

# A literal directly followed by a letter (``Encoding``s) is not valid reStructuredText; an escaped
# space joins them as the docstring meant, without touching the docstring.
_LITERAL_THEN_WORD = re.compile(r"(``[^`]+``)(?=\w)")


def _docstring_markup(app, what, name, obj, options, lines: list[str]) -> None:
    lines[:] = [_LITERAL_THEN_WORD.sub(r"\1\\ ", line) for line in lines]


def setup(app) -> None:
    app.connect("autodoc-process-docstring", _docstring_markup)
