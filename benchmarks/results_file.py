"""One `benchmarks/RESULTS.md`, several scripts: each script owns one marked section and rewrites only it.

    from results_file import write_section
    write_section("serving", markdown_text)

Sections are kept in the order they were first written; a rerun of one script leaves the others alone.
"""

from __future__ import annotations

import platform
import re
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
HEADER = (
    "# longformer2vec benchmark results\n\n"
    "Each section below is written by the script named at its top; rerun that script to refresh it.\n"
)


def _markers(name: str) -> tuple[str, str]:
    if not re.fullmatch(r"[a-z0-9][a-z0-9_-]*", name):
        raise ValueError(f"section name must be lowercase letters, digits, '-' or '_', got {name!r}")
    return f"<!-- section:{name} -->", f"<!-- /section:{name} -->"


def write_section(name: str, body: str, path: Path = RESULTS) -> Path:
    """Replace (or append) section `name` of the results file with `body`; returns the file's path."""
    begin, end = _markers(name)
    text = path.read_text(encoding="utf-8") if path.exists() else HEADER
    block = f"{begin}\n{body.strip()}\n{end}"
    pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.DOTALL)
    if pattern.search(text):
        text = pattern.sub(lambda _: block, text, count=1)
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    tmp = path.with_suffix(".md.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    return path


def publish(name: str, body: str, write: bool) -> None:
    """Print a script's section and, with ``write`` (its ``--results`` flag), store it in RESULTS.md."""
    print(body)
    if write:
        write_section(name, body)


def read_section(name: str, path: Path = RESULTS) -> str | None:
    """The current body of section `name`, or None."""
    begin, end = _markers(name)
    if not path.exists():
        return None
    match = re.search(
        re.escape(begin) + r"\n(.*?)\n" + re.escape(end), path.read_text(encoding="utf-8"), re.DOTALL
    )
    return match.group(1) if match else None


def cpu_model() -> str:
    """The CPU's model name (for the machine line of each section)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"
