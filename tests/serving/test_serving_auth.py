"""API key, `/v1/models` and `/info`, against a real `longformer2vec serve` with a key.

The module's server takes its key from LONGFORMER2VEC_API_KEY (the way that keeps it out of the process
list); the official `openai` client (in the `test` extra) calls it as any OpenAI user would.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

httpx = pytest.importorskip("httpx")
pytest.importorskip("fastapi")

from longformer2vec import Longformer2Vec, __version__
from longformer2vec.serving.config import API_KEY_ENV, ServeConfig, api_key_from
from tests.helpers_serving import Server, free_port, metric, post

KEY = "sk-test-0123456789abcdef"
AUTH = {"authorization": f"Bearer {KEY}"}
TEXTS = ["I enjoy taking long walks along the beach with my dog.", "", "The quick brown fox."]
# (method, route, body): every route a key protects
PROTECTED = [
    ("POST", "/v1/embeddings", {"input": "hello"}),
    ("GET", "/v1/models", None),
    ("POST", "/embed", {"inputs": "hello"}),
    ("GET", "/info", None),
]


@pytest.fixture(scope="module")
def model(tiny_fp32_dir: Path) -> Longformer2Vec:
    return Longformer2Vec(tiny_fp32_dir)


@pytest.fixture(scope="module")
def server(tiny_fp32_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    log = tmp_path_factory.mktemp("serve-auth") / "server.log"
    srv = Server(tiny_fp32_dir, log, "--threads=1", "--max-inputs-per-request=16", env={API_KEY_ENV: KEY})
    try:
        srv.wait_ready()
        yield srv
    finally:
        srv.stop()


def _call(server: Server, method: str, route: str, body: object, headers: dict[str, str]) -> httpx.Response:
    if method == "POST":
        return post(server, route, body, headers=headers)
    return httpx.get(server.url + route, headers=headers, timeout=60)


def _assert_401(res: httpx.Response, route: str, code: str | None, message: str) -> None:
    assert res.status_code == 401, res.text
    assert res.headers["www-authenticate"] == "Bearer"
    assert KEY not in res.text
    body = res.json()
    if route.startswith("/v1/"):  # OpenAI's shape: the official client turns it into AuthenticationError
        assert body == {
            "error": {
                "message": body["error"]["message"],
                "type": "invalid_request_error",
                "param": None,
                "code": code,
            }
        }
        assert message in body["error"]["message"]
    else:  # TEI's shape
        assert body == {"error": body["error"], "error_type": "Unauthorized"} and message in body["error"]


@pytest.mark.parametrize(("method", "route", "body"), PROTECTED)
def test_protected_routes_answer_401_without_the_key_or_with_a_wrong_one(
    server: Server, method: str, route: str, body: object
) -> None:
    missing = _call(server, method, route, body, {})
    _assert_401(missing, route, None, "no API key")
    for wrong in (f"Bearer {KEY}x", f"Bearer {KEY[:-1]}", "Bearer x", f"Basic {KEY}", KEY):
        res = _call(server, method, route, body, {"authorization": wrong})
        if wrong.startswith("Bearer "):
            _assert_401(res, route, "invalid_api_key", "incorrect API key")
        else:  # not Bearer auth: as if no key was sent
            _assert_401(res, route, None, "no API key")
    ok = _call(server, method, route, body, AUTH)
    assert ok.status_code == 200, ok.text
    lower = _call(server, method, route, body, {"authorization": f"bearer  {KEY}"})  # scheme is case-free
    assert lower.status_code == 200, lower.text


def test_an_unknown_path_needs_the_key_too(server: Server) -> None:
    """Without the key a scanner learns nothing about which paths exist."""
    assert httpx.get(server.url + "/nothing-here").status_code == 401
    assert httpx.get(server.url + "/nothing-here", headers=AUTH).status_code == 404


def test_health_and_metrics_stay_open_and_count_the_401s(server: Server) -> None:
    before = httpx.get(server.url + "/metrics")
    assert before.status_code == 200
    assert httpx.get(server.url + "/health").status_code == 200
    post(server, "/embed", {"inputs": "x"})
    after = httpx.get(server.url + "/metrics").text
    added = metric(after, "longformer2vec_requests_total", route="/embed", status="401") - metric(
        before.text, "longformer2vec_requests_total", route="/embed", status="401"
    )
    assert added == 1


def test_openai_client_gets_the_python_api_vectors(server: Server, model: Longformer2Vec) -> None:
    openai = pytest.importorskip("openai")
    client = openai.OpenAI(base_url=server.url + "/v1", api_key=KEY, max_retries=0, timeout=60)
    res = client.embeddings.create(model=model.manifest.model_id, input=TEXTS)
    got = np.array([item.embedding for item in sorted(res.data, key=lambda d: d.index)], dtype=np.float32)
    expected = np.array([model.encode(t) for t in TEXTS], dtype=np.float32)
    diff = float(np.abs(got - expected).max())
    cosine = (got * expected).sum(1) / (np.linalg.norm(got, axis=1) * np.linalg.norm(expected, axis=1))
    print(f"openai client vs Longformer2Vec.encode: max abs {diff:.2e}, min cosine {cosine.min():.8f}")
    assert got.shape == (len(TEXTS), model.vector_length) and diff < 2e-5
    assert res.model == model.manifest.model_id
    assert res.usage.prompt_tokens == sum(len(model.tokenizer.encode(t).ids) for t in TEXTS)

    # the client asks for base64 by default when numpy is installed; ask for floats too
    floats = client.embeddings.create(model="any", input=TEXTS[0], encoding_format="float")
    np.testing.assert_allclose(floats.data[0].embedding, expected[0], atol=2e-5)

    models = client.models.list()
    assert [m.id for m in models.data] == [model.manifest.model_id]
    assert client.models.retrieve(model.manifest.model_id).owned_by == "longformer2vec"


def test_openai_client_with_a_wrong_key_raises_authentication_error(
    server: Server, model: Longformer2Vec
) -> None:
    openai = pytest.importorskip("openai")
    client = openai.OpenAI(base_url=server.url + "/v1", api_key=KEY + "-wrong", max_retries=0, timeout=60)
    with pytest.raises(openai.AuthenticationError) as caught:
        client.embeddings.create(model=model.manifest.model_id, input=["hello"])
    assert caught.value.status_code == 401 and caught.value.code == "invalid_api_key"
    with pytest.raises(openai.AuthenticationError):
        client.models.list()


def test_v1_models_lists_the_served_model(server: Server, model: Longformer2Vec) -> None:
    body = httpx.get(server.url + "/v1/models", headers=AUTH).json()
    assert body == {"object": "list", "data": [body["data"][0]]}
    card = body["data"][0]
    assert card["id"] == model.manifest.model_id and card["object"] == "model"
    assert card["owned_by"] == "longformer2vec"
    assert isinstance(card["created"], int) and abs(card["created"] - time.time()) < 7 * 24 * 3600
    one = httpx.get(server.url + "/v1/models/" + model.manifest.model_id, headers=AUTH)
    assert one.status_code == 200 and one.json() == card
    other = httpx.get(server.url + "/v1/models/some-other-model", headers=AUTH)
    assert other.status_code == 404 and other.json()["error"]["code"] == "model_not_found"


def test_info_answers_tei_fields(server: Server, model: Longformer2Vec, tiny_fp32_dir: Path) -> None:
    info = httpx.get(server.url + "/info", headers=AUTH).json()
    graph = model.graph.path
    assert info == {
        "model_id": model.manifest.model_id,
        "model_sha": hashlib.sha256(graph.read_bytes()).hexdigest(),
        "model_dtype": "float32",
        "served_model_name": model.manifest.model_id,
        "model_type": {"embedding": {"pooling": "mean"}},
        "max_concurrent_requests": 256,
        "max_input_length": model.max_length,
        "max_batch_tokens": model.max_batch_tokens,
        "max_batch_requests": 64,
        "max_client_batch_size": 16,
        "auto_truncate": False,
        "tokenization_workers": info["tokenization_workers"],
        "version": __version__,
        "sha": None,
        "docker_label": None,
    }
    assert isinstance(info["tokenization_workers"], int) and info["tokenization_workers"] >= 1


def test_info_dtype_follows_the_graph_precision(tiny_int8_dir: Path) -> None:
    """In process, on the int8 export: `model_dtype` is the precision of the graph the model runs."""
    from fastapi.testclient import TestClient

    from longformer2vec.serving.app import create_app, load_model

    assert Longformer2Vec(tiny_int8_dir).precision == "int8"
    with TestClient(
        create_app(ServeConfig(str(tiny_int8_dir), pooling="cls"), model_factory=load_model)
    ) as client:
        deadline = time.monotonic() + 30
        while client.get("/health").status_code != 200:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        info = client.get("/info").json()
    assert info["model_dtype"] == "int8" and info["model_type"] == {"embedding": {"pooling": "cls"}}


def test_metrics_require_key_closes_metrics_but_not_health(tiny_fp32_dir: Path) -> None:
    from fastapi.testclient import TestClient

    from longformer2vec.serving.app import create_app

    config = ServeConfig(str(tiny_fp32_dir), api_key=KEY, metrics_require_key=True)
    assert KEY not in repr(config)
    with TestClient(create_app(config)) as client:
        deadline = time.monotonic() + 30
        while client.get("/health").status_code != 200:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        closed = client.get("/metrics")
        assert closed.status_code == 401 and closed.json()["error_type"] == "Unauthorized"
        assert client.get("/metrics", headers=AUTH).status_code == 200


def test_the_key_is_compared_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    from longformer2vec.serving import auth

    calls: list[tuple[bytes, bytes]] = []
    real = auth.hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(auth.hmac, "compare_digest", spy)
    middleware = auth.ApiKeyMiddleware(app=None, api_key=KEY, open_paths=())
    assert middleware.check(f"Bearer {KEY}".encode()) is None
    assert middleware.check(b"Bearer nope").code == "invalid_api_key"  # type: ignore[union-attr]
    assert len(calls) == 2 and all(len(a) == len(b) == 32 for a, b in calls)  # digests: length hidden too


def test_the_flag_wins_over_the_environment_and_an_empty_variable_is_unset() -> None:
    assert api_key_from("from-flag", {API_KEY_ENV: "from-env"}) == "from-flag"
    assert api_key_from(None, {API_KEY_ENV: "from-env"}) == "from-env"
    assert api_key_from(None, {API_KEY_ENV: ""}) is None
    assert api_key_from(None, {}) is None


def test_the_flag_wins_over_the_environment_in_a_real_server(tiny_fp32_dir: Path, tmp_path: Path) -> None:
    srv = Server(
        tiny_fp32_dir,
        tmp_path / "server.log",
        "--threads=1",
        "--api-key",
        "flag-key",
        env={API_KEY_ENV: "env-key"},
    )
    try:
        srv.wait_ready()
        route = "/v1/models"
        assert httpx.get(srv.url + route, headers={"authorization": "Bearer flag-key"}).status_code == 200
        assert httpx.get(srv.url + route, headers={"authorization": "Bearer env-key"}).status_code == 401
        assert "API key required" in srv.log() and "flag-key" not in srv.log()
    finally:
        srv.stop()


def test_binding_beyond_loopback_without_a_key_logs_a_warning(tmp_path: Path) -> None:
    """On 0.0.0.0 with a model directory that cannot load (its manifest is corrupt): the warning comes
    before the load, which then fails at once (exit 1), so the port is open for a moment only."""
    (tmp_path / "manifest.json").write_text("{not json", encoding="utf-8")
    cmd = [sys.executable, "-m", "longformer2vec", "serve", "--model", str(tmp_path)]
    cmd += ["--host", "0.0.0.0", "--port", str(free_port())]
    env = {k: v for k, v in os.environ.items() if k != API_KEY_ENV}
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False, env=env)
    assert res.returncode == 1, res.stderr
    assert "listening on 0.0.0.0 without an API key" in res.stderr
    with_key = subprocess.run(
        cmd, capture_output=True, text=True, timeout=120, check=False, env={**env, API_KEY_ENV: KEY}
    )
    assert with_key.returncode == 1 and "without an API key" not in with_key.stderr, with_key.stderr
