"""A name that is no export fails fast, in one line, leaving nothing in the cache: a damaged export
(config.json, no manifest), a name that is neither a directory nor reachable on the hub."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.error
from pathlib import Path

import pytest

from longformer2vec import ExportUnavailableError, Longformer2Vec, ModelLoadError, hub, hub_probe
from tests.helpers_runtime import write_stub_model_dir


@pytest.fixture
def exporter(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The export extra taken as installed (whether or not it is here); an export it is asked for fails
    the test: these names must be refused before any export."""
    asked: list[str] = []

    def export_model(name, *args, **kwargs):
        asked.append(name)
        raise AssertionError(f"export of {name} attempted")

    monkeypatch.setattr(hub, "_exporter", lambda name, missing_dir=None: export_model)
    return asked


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _damaged(tmp_path: Path) -> Path:
    """An export copied without its manifest: config.json, tokenizer, graphs."""
    d = write_stub_model_dir(tmp_path / "damaged")
    (d / "config.json").write_text('{"model_type": "longformer"}', encoding="utf-8")
    (d / "manifest.json").unlink()
    return d


def test_damaged_export_is_one_line_and_leaves_nothing(tmp_path: Path) -> None:
    d, cache = _damaged(tmp_path), tmp_path / "cache"
    started = time.monotonic()
    with pytest.raises(ModelLoadError) as info:
        Longformer2Vec(str(d), cache_dir=cache)
    message = str(info.value)
    assert time.monotonic() - started < 10
    assert "\n" not in message and str(d) in message and "manifest.json" in message, message
    assert "damaged or partly copied longformer2vec export" in message
    assert not cache.exists()  # no export attempted, no lock file


@pytest.mark.parametrize("name", ["longformer-base-4096", "org/not-in-any-cache"])
def test_unknown_name_offline_names_both_readings(tmp_path: Path, monkeypatch, exporter, name: str) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    started = time.monotonic()
    with pytest.raises(ModelLoadError) as info:
        Longformer2Vec(name, cache_dir=tmp_path / "cache")
    message = str(info.value)
    assert time.monotonic() - started < 10
    assert "\n" not in message
    assert f"no directory {tmp_path / name}" in message and "HF_HUB_OFFLINE" in message, message
    assert f"longformer2vec export {name} --output DIR" in message
    assert not (tmp_path / "cache").exists()


def test_unreachable_hub_is_probed_once(tmp_path: Path, monkeypatch, exporter) -> None:
    """Online but the hub unreachable: one probe (no retries), a few seconds at most."""
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    calls = []

    def urlopen(request, timeout):
        calls.append(request.full_url)
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(hub_probe.urllib.request, "urlopen", urlopen)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ModelLoadError, match=r"no directory .*unreachable: \[Errno -3\]"):
        Longformer2Vec("longformer-base-4096", cache_dir=tmp_path / "cache")
    assert calls == ["https://huggingface.co/api/models/longformer-base-4096"]
    assert not (tmp_path / "cache").exists()


def test_without_the_export_extra_the_missing_directory_is_named(tmp_path: Path, monkeypatch) -> None:
    """A runtime-only install: the two readings are "no such directory" and "cannot export here"."""
    monkeypatch.setitem(sys.modules, "longformer2vec.export", None)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ExportUnavailableError) as info:
        Longformer2Vec("longformer-base-4096", cache_dir=tmp_path / "cache")
    assert f"there is no directory {tmp_path / 'longformer-base-4096'}" in str(info.value)
    assert "\n" not in str(info.value) and not (tmp_path / "cache").exists()


def test_probe_gives_up_on_a_hanging_resolver(monkeypatch) -> None:
    def urlopen(request, timeout):
        time.sleep(2)
        raise urllib.error.URLError("too late")

    monkeypatch.setattr(hub_probe.urllib.request, "urlopen", urlopen)
    started = time.monotonic()
    problem = hub_probe.probe("org/model", timeout=0.5)
    assert time.monotonic() - started < 2 and problem is not None and "no answer within 0.5 s" in problem


def test_probe_names_a_missing_repository(monkeypatch) -> None:
    def urlopen(request, timeout):
        raise urllib.error.HTTPError(request.full_url, 404, "Not Found", {}, None)

    monkeypatch.setattr(hub_probe.urllib.request, "urlopen", urlopen)
    assert hub_probe.probe("org/typo") == "the hub has no repository 'org/typo' (HTTP 404)"


@pytest.mark.parametrize("command", ["embed", "serve"])
def test_cli_damaged_export_is_one_line(tmp_path: Path, command: str) -> None:
    """`embed` and `serve` (which resolves the model before it listens): one error line, exit 1."""
    d = _damaged(tmp_path)
    cache = tmp_path / "cache"
    args = [sys.executable, "-m", "longformer2vec", command, "--model", str(d)]
    args += ["dog"] if command == "embed" else ["--port", str(_free_port())]
    env = {"LONGFORMER2VEC_CACHE": str(cache), "HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"}
    started = time.monotonic()
    res = subprocess.run(args, capture_output=True, text=True, timeout=60, env=env, check=False)
    assert res.returncode == 1, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "manifest.json" in lines[0], res.stderr
    assert "Traceback" not in res.stderr and "listening" not in res.stderr and not cache.exists()
    assert time.monotonic() - started < 30  # mostly interpreter start-up


def test_cli_serve_unknown_name_fails_before_listening(tmp_path: Path) -> None:
    env = {"LONGFORMER2VEC_CACHE": str(tmp_path / "cache"), "HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"}
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "longformer2vec",
            "serve",
            "--model",
            "longformer-base-4096",
            "--port",
            str(_free_port()),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=tmp_path,
        check=False,
    )
    assert res.returncode == 1 and "listening" not in res.stderr, res.stderr
    (line,) = res.stderr.strip().splitlines()
    # the hub is off (export extra installed) or there is no exporter here (runtime-only install)
    assert "no directory" in line and ("HF_HUB_OFFLINE" in line or "export extra" in line), line
    assert not (tmp_path / "cache").exists()
