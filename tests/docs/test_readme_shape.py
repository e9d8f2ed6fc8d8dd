"""README stays a short front page: at most 250 lines, and every relative link in it reaches a file of the
repository (the details live on the docs/ pages it links to, which GitHub renders from those paths)."""

from __future__ import annotations

import re

from tests.doc_blocks import REPO_ROOT

README = REPO_ROOT / "README.md"
MAX_LINES = 250
LINK = re.compile(r"\]\((?P<target>[^)\s]+)\)")


def test_readme_is_short() -> None:
    lines = README.read_text(encoding="utf-8").splitlines()
    print(f"README.md: {len(lines)} lines")
    assert len(lines) <= MAX_LINES, (
        f"README.md has {len(lines)} lines, over {MAX_LINES}: move detail to docs/"
    )


def test_readme_relative_links_reach_files() -> None:
    targets = [m["target"] for m in LINK.finditer(README.read_text(encoding="utf-8"))]
    local = [t.split("#", 1)[0] for t in targets if not re.match(r"[a-z]+:", t) and not t.startswith("#")]
    print(f"{len(local)} relative links: {sorted(set(local))}")
    assert local, "README.md links to no docs page"
    missing = [t for t in local if not (REPO_ROOT / t).exists()]
    assert not missing, f"README.md links to missing files: {missing}"
