"""A real `longformer2vec serve` process for the serving tests, and small HTTP helpers."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import httpx
import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """A `python -m longformer2vec serve` subprocess; its output goes to a log file (no pipe to fill).

    `env` adds to (or, with a None value, removes from) this process's environment."""

    def __init__(
        self, model_dir: Path, log_path: Path, *flags: str, env: Mapping[str, str | None] | None = None
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        cmd = [sys.executable, "-m", "longformer2vec", "serve", "--model", str(model_dir)]
        cmd += ["--host", "127.0.0.1", "--port", str(self.port), *flags]
        environ = dict(os.environ)
        for name, value in (env or {}).items():
            if value is None:
                environ.pop(name, None)
            else:
                environ[name] = value
        self._log = open(log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT, env=environ)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_ready(self, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"server exited with {self.proc.returncode}:\n{self.log()}")
            try:
                if httpx.get(self.url + "/health", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        pytest.fail(f"server not ready after {timeout} s:\n{self.log()}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._log.close()


def post(server: Server, route: str, body: object, **kwargs: object) -> httpx.Response:
    content = body if isinstance(body, (bytes, str)) else json.dumps(body)
    headers = {"content-type": "application/json", **kwargs.pop("headers", {})}  # type: ignore[dict-item]
    return httpx.post(server.url + route, content=content, headers=headers, timeout=60, **kwargs)


def metric(text: str, name: str, **labels: str) -> float:
    """Value of one sample in Prometheus text format (0 when absent)."""
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        key, _, value = line.rpartition(" ")
        sample, _, rest = key.partition("{")
        got = ",".join(sorted(rest.rstrip("}").split(","))) if rest else ""
        if sample == name and got == want:
            return float(value)
    return 0.0


def slow_model_dir(model_dir: Path, target: Path) -> Path:
    """A copy of an export whose windows advance one token at a time (manifest `chunk_overlap` at its
    largest), so that a long text keeps the model busy for seconds: the shutdown and queue tests act
    while it runs. Vectors stay exact; the graphs are the same files."""
    import shutil

    shutil.copytree(model_dir, target)
    manifest = json.loads((target / "manifest.json").read_text())
    manifest["chunk_overlap"] = manifest["max_length"]  # clamped to window - 1: stride 1
    (target / "manifest.json").write_text(json.dumps(manifest))
    return target
