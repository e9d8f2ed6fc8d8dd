"""The server's contract as clients and tools read it: the OpenAPI document (request bodies, every answer,
the bearer scheme), a schemathesis run with every check against it, TEI's default routes, and errors in
the route family's format for what FastAPI would answer itself (unknown paths, wrong methods, a body
that is not JSON)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

httpx = pytest.importorskip("httpx")
pytest.importorskip("fastapi")

from longformer2vec import Longformer2Vec
from longformer2vec.common import normalize
from longformer2vec.serving.config import API_KEY_ENV
from tests.helpers_serving import Server, post

KEY = "sk-contract-0123456789"
AUTH = {"authorization": f"Bearer {KEY}"}
EMBED_ROUTES = ("/v1/embeddings", "/embeddings", "/embed", "/", "/invocations")


@pytest.fixture(scope="module")
def model(tiny_fp32_dir: Path) -> Longformer2Vec:
    return Longformer2Vec(tiny_fp32_dir)


@pytest.fixture(scope="module")
def keyed(tiny_fp32_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    log = tmp_path_factory.mktemp("contract") / "server.log"
    server = Server(
        tiny_fp32_dir,
        log,
        "--threads=1",
        "--max-inputs-per-request=8",
        "--served-model-name=longformer-tiny",
        env={API_KEY_ENV: KEY},
    )
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def open_server(tiny_fp32_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    log = tmp_path_factory.mktemp("contract-open") / "server.log"
    server = Server(tiny_fp32_dir, log, "--threads=1", "--max-inputs-per-request=8", env={API_KEY_ENV: None})
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


def _schemathesis(server: Server, workdir: Path, *headers: str) -> None:
    """Every check, a bounded number of examples per operation; the run must find nothing."""
    st = Path(sys.executable).with_name("st")
    if not st.exists():
        pytest.skip("schemathesis is not installed (pip install -e '.[test]')")
    cmd = [str(st), "run", f"{server.url}/openapi.json", "--checks", "all", "--max-examples", "40"]
    for header in headers:
        cmd += ["-H", header]
    env = {**os.environ, "NO_COLOR": "1"}
    # its run reports go under the working directory: a temporary one, not the clone
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env, check=False, cwd=workdir)
    print(res.stdout[-3000:])
    assert res.returncode == 0, res.stdout[-6000:] + res.stderr[-2000:]
    assert "No issues found" in res.stdout


def test_schemathesis_finds_nothing_with_a_key(keyed: Server, tmp_path: Path) -> None:
    _schemathesis(keyed, tmp_path, f"Authorization: Bearer {KEY}")


def test_schemathesis_finds_nothing_without_a_key(open_server: Server, tmp_path: Path) -> None:
    _schemathesis(open_server, tmp_path)


def test_openapi_declares_bodies_answers_and_the_bearer_scheme(keyed: Server, model: Longformer2Vec) -> None:
    doc = httpx.get(keyed.url + "/openapi.json").json()  # open without the key, like /health
    assert doc["components"]["securitySchemes"] == {
        "bearer": {"type": "http", "scheme": "bearer", "description": "The server's API key"}
    }
    for route in EMBED_ROUTES:
        op = doc["paths"][route]["post"]
        assert op["requestBody"]["required"] is True, route
        assert op["security"] == [{"bearer": []}]
        assert set(op["responses"]) == {"200", "401", "413", "415", "422", "500", "503"}, route
    assert "security" not in doc["paths"]["/health"]["get"]
    assert "security" not in doc["paths"]["/"]["get"]
    request = doc["components"]["schemas"]["OpenAIEmbeddingRequest"]
    array = next(b for b in request["properties"]["input"]["anyOf"] if b.get("type") == "array")
    assert (array["minItems"], array["maxItems"]) == (1, 8)
    assert {"type": "integer", "const": model.vector_length} in request["properties"]["dimensions"]["anyOf"]
    docs = httpx.get(keyed.url + "/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower() and "/openapi.json" in docs.text


def test_tei_default_routes_embed_like_embed(keyed: Server, model: Longformer2Vec) -> None:
    texts = ["a short text", "another one"]
    want = normalize(np.array([model.encode(t) for t in texts], dtype=np.float32))
    for route in ("/", "/invocations", "/embed"):
        res = post(keyed, route, {"inputs": texts}, headers=AUTH)
        assert res.status_code == 200, res.text
        assert np.abs(np.array(res.json(), dtype=np.float32) - want).max() <= 1e-5, route
    assert httpx.get(keyed.url + "/").json()["status"] == "ok"  # GET / is health, open as /health is
    assert httpx.get(keyed.url + "/ping").status_code == 200


def test_openai_route_without_v1_answers_in_openai_format(keyed: Server, model: Longformer2Vec) -> None:
    res = post(keyed, "/embeddings", {"input": "a short text"}, headers=AUTH)
    assert res.status_code == 200, res.text
    assert res.json()["model"] == "longformer-tiny"  # --served-model-name
    assert np.abs(np.array(res.json()["data"][0]["embedding"]) - model.encode("a short text")).max() <= 1e-5
    bad = post(keyed, "/embeddings", {"input": 5}, headers=AUTH)
    assert bad.status_code == 422 and bad.json()["error"]["type"] == "invalid_request_error"


def test_served_model_name_everywhere(keyed: Server) -> None:
    assert httpx.get(keyed.url + "/v1/models", headers=AUTH).json()["data"][0]["id"] == "longformer-tiny"
    assert httpx.get(keyed.url + "/v1/models/longformer-tiny", headers=AUTH).status_code == 200
    info = httpx.get(keyed.url + "/info", headers=AUTH).json()
    assert info["served_model_name"] == "longformer-tiny" and "/" not in info["model_id"]
    assert httpx.get(keyed.url + "/health").json()["model"] == "longformer-tiny"


@pytest.mark.parametrize(
    ("method", "route", "status", "family"),
    [
        ("GET", "/nothing-here", 404, "tei"),
        ("GET", "/v1/nothing-here", 404, "openai"),
        ("DELETE", "/embed", 405, "tei"),
        ("GET", "/v1/embeddings", 405, "openai"),
        ("PUT", "/", 405, "tei"),
    ],
)
def test_unknown_routes_and_wrong_methods_answer_in_the_route_family_format(
    keyed: Server, method: str, route: str, status: int, family: str
) -> None:
    res = httpx.request(method, keyed.url + route, headers=AUTH)
    assert res.status_code == status, res.text
    body = res.json()
    if family == "openai":
        assert set(body) == {"error"} and body["error"]["type"] == "invalid_request_error", body
        message = body["error"]["message"]
    else:
        assert set(body) == {"error", "error_type"} and body["error_type"] == "Validation", body
        message = body["error"]
    assert route in message
    if status == 405:
        allowed = res.headers["allow"]
        assert method not in allowed and allowed
        if route == "/":
            assert allowed == "GET, POST"


@pytest.mark.parametrize("route", ["/v1/embeddings", "/embed"])
def test_a_body_that_is_not_declared_json_is_415(keyed: Server, route: str) -> None:
    form = httpx.post(
        keyed.url + route,
        content=b'{"input": "x", "inputs": "x"}',
        headers={**AUTH, "content-type": "application/x-www-form-urlencoded"},
    )
    assert form.status_code == 415, form.text
    assert "Content-Type: application/json" in form.text
    undeclared = httpx.post(keyed.url + route, content=b'{"input": "x", "inputs": "x"}', headers=AUTH)
    assert undeclared.status_code == 200, undeclared.text  # no Content-Type at all: read as JSON
    charset = post(
        keyed,
        route,
        {"input": "x", "inputs": "x"},
        headers={**AUTH, "content-type": "application/json; charset=utf-8"},
    )
    assert charset.status_code == 200, charset.text
