"""The fenced code blocks of README.md and docs/*.md, and how to run them as a reader would.

A `bash` (or `sh`, `shell`) or `python` block runs; any other language (`text`, `js`, `json`, MyST
directives such as `{toctree}`) is shown, not run. A block that cannot run here says why in an HTML
comment on the line just above its fence, which renders as nothing:

    <!-- skip: downloads allenai/longformer-base-4096 from the Hugging Face hub -->

The blocks of one page run in order in one fresh working directory (a later block may use what an
earlier one wrote), with the test environment's `python` and `longformer2vec` first on PATH and the
runtime's cache inside that directory.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

RUNNABLE = {"bash": "bash", "sh": "bash", "shell": "bash", "python": "python", "py": "python"}
SKIP_MARKER = re.compile(r"^\s*<!--\s*skip:\s*(?P<reason>.+?)\s*-->\s*$")
FENCE = re.compile(r"^(?P<indent> {0,3})(?P<fence>`{3,}|~{3,})(?P<info>.*)$")
BLOCK_TIMEOUT_S = float(os.environ.get("LONGFORMER2VEC_DOC_BLOCK_TIMEOUT_S", "600"))

# The repository root, wherever under tests/ the importing test file lives.
REPO_ROOT = next(p for p in Path(__file__).resolve().parents if (p / "pyproject.toml").is_file())

# Blocks skipped with their reasons, filled while the tests run and printed in the terminal summary.
SKIPPED: list[str] = []


@dataclass(frozen=True)
class Block:
    path: Path
    line: int  # 1-based line of the opening fence
    language: str
    code: str
    skip_reason: str | None

    @property
    def runner(self) -> str | None:
        return RUNNABLE.get(self.language)

    def where(self, root: Path) -> str:
        try:
            name = self.path.relative_to(root)
        except ValueError:
            name = self.path
        return f"{name}:{self.line}"


def extract_blocks(path: Path) -> list[Block]:
    """Every fenced block of a Markdown file, in order, with the skip reason written above it."""
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        opening = FENCE.match(lines[i])
        if not opening:
            i += 1
            continue
        fence, info = opening["fence"], opening["info"].strip()
        if fence[0] == "`" and "`" in info:  # not a fence: inline code that starts a line
            i += 1
            continue
        previous = next((lines[j] for j in range(i - 1, -1, -1) if lines[j].strip()), "")
        marker = SKIP_MARKER.match(previous)
        body: list[str] = []
        j = i + 1
        while j < len(lines):
            closing = FENCE.match(lines[j])
            if (
                closing
                and closing["fence"][0] == fence[0]
                and len(closing["fence"]) >= len(fence)
                and not closing["info"].strip()
            ):
                break
            body.append(_dedent(lines[j], len(opening["indent"])))
            j += 1
        language = info.split()[0].lower() if info else ""
        blocks.append(
            Block(path, i + 1, language, "\n".join(body) + "\n", marker["reason"] if marker else None)
        )
        i = j + 1
    return blocks


def _dedent(line: str, indent: int) -> str:
    """A line of a fence indented inside a list item, without the fence's indentation (as CommonMark)."""
    spaces = len(line) - len(line.lstrip(" "))
    return line[min(spaces, indent) :]


def block_env(workdir: Path) -> dict[str, str]:
    """The environment a reader's shell would have after activating the test's virtual environment."""
    bin_dir = str(Path(sys.executable).parent)
    env = dict(os.environ)
    env["PATH"] = bin_dir + os.pathsep + env.get("PATH", "")
    env["LONGFORMER2VEC_CACHE"] = str(workdir / ".cache")
    env["HF_HUB_OFFLINE"] = "1"  # a block that reaches for the hub must be marked, not hang on the network
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env.pop("PYTHONPATH", None)  # the package as installed, not the clone on the path
    return env


def run_block(block: Block, workdir: Path) -> subprocess.CompletedProcess[str]:
    """Run one block in `workdir`; bash stops at the first failing command. The block runs in its own
    process group, which is ended afterwards, so a server it left in the background (or one still
    running at the timeout) does not outlive it."""
    if block.runner == "bash":
        cmd = ["bash", "-e", "-o", "pipefail", "-c", block.code]
    else:
        cmd = [sys.executable, "-c", block.code]
    proc = subprocess.Popen(
        cmd,
        cwd=workdir,
        env=block_env(workdir),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = proc.communicate(timeout=BLOCK_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        _end_group(proc.pid)
        proc.communicate()
        raise
    _end_group(proc.pid)
    return subprocess.CompletedProcess(cmd, proc.returncode, stdout, stderr)


def _end_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:  # the block left nothing running
        pass


def main(argv: list[str] | None = None) -> int:
    """`python -m tests.doc_blocks FILE...`: each block, whether it runs, and the reason when it does not."""
    import argparse

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("files", nargs="+", type=Path)
    for path in parser.parse_args(argv).files:
        for block in extract_blocks(path):
            if not block.runner:
                state = "shown"
            else:
                state = f"skip: {block.skip_reason}" if block.skip_reason else "runs"
            first = next((line for line in block.code.splitlines() if line.strip()), "")
            print(f"{path}:{block.line}\t{block.language or '-'}\t{state}\t{first[:70]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
