"""Every runnable code block of README.md and docs/*.md runs as written, page by page, each page in a
fresh working directory (see `tests/doc_blocks.py`).

A block that names `longformer-base-4096` finds an exported directory of that name there: a tiny
random Longformer exported to fp32 and int8 by this test, so the reader's commands run offline.
Blocks that need the hub, a GPU, a cluster or another tool's environment carry a
`<!-- skip: reason -->` line and are listed in the run's summary.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.doc_blocks import REPO_ROOT, SKIPPED, Block, extract_blocks, run_block

ROOT = REPO_ROOT
ALL_DOC_PAGES = sorted((ROOT / "docs").glob("*.md"))
# Pages with a block to run: pages of prose and tables, or of marked blocks only, have nothing to run.
DOC_PAGES = [p for p in ALL_DOC_PAGES if any(b.runner and not b.skip_reason for b in extract_blocks(p))]
README = ROOT / "README.md"
EXPORT_NAME = "longformer-base-4096"


@pytest.fixture(scope="session")
def named_export(tiny_hf: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An export called `longformer-base-4096` (fp32 and int8), as the docs' examples name it."""
    out = tmp_path_factory.mktemp("docs-export") / EXPORT_NAME
    cmd = [sys.executable, "-m", "longformer2vec", "export", str(tiny_hf), "--output", str(out)]
    res = subprocess.run([*cmd, "--precision", "fp32,int8"], capture_output=True, text=True, check=False)
    assert res.returncode == 0, res.stderr
    return out


def _run_page(page: Path, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    to_run = [b for b in extract_blocks(page) if b.runner and not b.skip_reason]
    if any(EXPORT_NAME in b.code for b in to_run):
        shutil.copytree(request.getfixturevalue("named_export"), tmp_path / EXPORT_NAME)
    for block in to_run:
        _run_one(block, tmp_path)


def _run_one(block: Block, workdir: Path) -> None:
    try:
        res = run_block(block, workdir)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(
            f"{block.where(ROOT)}: {block.language} block ran past {exc.timeout:.0f} s:\n{block.code}"
        )
    if res.returncode != 0:
        pytest.fail(
            f"{block.where(ROOT)}: {block.language} block exited {res.returncode}:\n{block.code}\n"
            f"--- stdout (tail)\n{res.stdout[-2000:]}\n--- stderr (tail)\n{res.stderr[-4000:]}"
        )


@pytest.mark.parametrize("page", DOC_PAGES, ids=lambda p: f"docs/{p.name}")
def test_docs_page_blocks_run(page: Path, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    _run_page(page, request, tmp_path)


def test_readme_blocks_run(request: pytest.FixtureRequest, tmp_path: Path) -> None:
    _run_page(README, request, tmp_path)


def test_marked_blocks_say_why() -> None:
    """Each block kept from running names its reason (listed in the run's summary)."""
    pages = [*ALL_DOC_PAGES, README]
    marked = [b for page in pages for b in extract_blocks(page) if b.runner and b.skip_reason]
    for block in marked:
        SKIPPED.append(f"{block.where(ROOT)} ({block.language}): {block.skip_reason}")
        assert len(block.skip_reason.split()) >= 3, (
            f"{block.where(ROOT)}: say why, not just {block.skip_reason!r}"
        )


# ---- the extractor itself


def test_extract_blocks_reads_languages_markers_and_nesting(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "# t\n\n```bash\necho one\n```\n\n<!-- skip: needs the Hugging Face hub -->\n\n```python\nimport x\n```\n"
        "````md\n```python\nnot a block of its own\n```\n````\n```text\nplain\n```\n"
    )
    blocks = extract_blocks(page)
    assert [(b.language, b.line, b.skip_reason) for b in blocks] == [
        ("bash", 3, None),
        ("python", 9, "needs the Hugging Face hub"),
        ("md", 12, None),
        ("text", 17, None),
    ]
    assert blocks[0].code == "echo one\n" and blocks[1].runner == "python" and blocks[2].runner is None
    assert "not a block of its own" in blocks[2].code


def test_block_indented_in_a_list_item_runs_dedented(tmp_path: Path) -> None:
    page = tmp_path / "list.md"
    page.write_text("1. Step:\n\n   ```python\n   for i in range(2):\n       print(i)\n   ```\n")
    (block,) = extract_blocks(page)
    assert block.code == "for i in range(2):\n    print(i)\n"
    assert run_block(block, tmp_path).stdout == "0\n1\n"


def test_failing_block_fails_the_page(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """A block that exits non-zero must fail the test (a runner that cannot fail checks nothing)."""
    page = tmp_path / "bad.md"
    page.write_text("```bash\ntrue\nfalse\necho never\n```\n")
    work = tmp_path / "work"
    work.mkdir()
    with pytest.raises(pytest.fail.Exception, match="exited 1"):
        _run_page(page, request, work)


def test_block_timeout_ends_what_the_block_started(tmp_path: Path, monkeypatch) -> None:
    """A block past its timeout fails, and the process it left running in the background is gone."""
    import time

    from tests import doc_blocks

    monkeypatch.setattr(doc_blocks, "BLOCK_TIMEOUT_S", 2.0)
    block = Block(tmp_path / "x.md", 1, "bash", "sleep 300 &\necho $! > bg.pid\nsleep 300\n", None)
    with pytest.raises(subprocess.TimeoutExpired):
        doc_blocks.run_block(block, tmp_path)
    pid = int((tmp_path / "bg.pid").read_text())
    deadline = time.monotonic() + 10  # killed at once; its reaping by init may take a moment
    while time.monotonic() < deadline and _alive(pid):
        time.sleep(0.1)
    assert not _alive(pid), f"background process {pid} outlived its block"


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"
