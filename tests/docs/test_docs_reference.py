"""The generated reference pages (docs/cli.md, docs/http-api.md) are what the code generates now, and the
HTTP page's examples answer 200 from a real server, run as the page writes them (curl)."""

from __future__ import annotations

import importlib.util
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.doc_blocks import REPO_ROOT

ROOT = REPO_ROOT


def _generator():
    spec = importlib.util.spec_from_file_location("gen_reference", ROOT / "docs" / "gen_reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("page", ["cli.md", "http-api.md"])
def test_generated_reference_is_current(page: str) -> None:
    gen = _generator()
    committed = (ROOT / "docs" / page).read_text()
    assert committed == gen.PAGES[page](), f"docs/{page} is stale: run python docs/gen_reference.py"


def test_cli_reference_lists_every_flag() -> None:
    """Each subcommand's every visible option appears in the page (a generator that drops rows fails)."""
    from longformer2vec.cli import build_parser

    text = (ROOT / "docs" / "cli.md").read_text()
    for name, _, sub in _generator()._subcommands(build_parser()):
        assert f"## `{name}`" in text
        for action in sub._actions:
            for flag in action.option_strings:
                if action.help != "==SUPPRESS==" and flag not in ("-h", "--help"):
                    assert f"`{flag}`" in text, (name, flag)


def test_http_examples_answer_200(stub_dir: Path, tmp_path: Path) -> None:
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    from tests.helpers_serving import Server

    examples = re.findall(r"^curl .*$", (ROOT / "docs" / "http-api.md").read_text(), re.MULTILINE)
    assert len(examples) >= 10, examples
    server = Server(stub_dir, tmp_path / "server.log", "--served-model-name", "MODEL")
    try:
        server.wait_ready()
        for example in examples:
            command = example.replace("http://127.0.0.1:8080", server.url)
            res = subprocess.run(
                [*shlex.split(command), "--fail-with-body"], capture_output=True, text=True, check=False
            )
            assert res.returncode == 0 and res.stdout, (example, res.returncode, res.stdout[:500])
    finally:
        server.stop()
