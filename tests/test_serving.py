"""`longformer2vec serve` as a real process on a free loopback port, on a tiny model the tests export.

One module-scoped server (small limits set by flags, so limit tests are cheap) serves most tests;
short-lived ones cover the full queue and graceful shutdown (--max-queue 1) and the graceful timeout's
503 (--graceful-timeout-s 0.2). Their slow requests are real inputs (texts of thousands of tokens,
which the tiny 128-token model embeds as thousands of overlapping windows); the tests wait on /metrics
until a request is inside the model (or queued) before they act, so nothing depends on sleeping the
right amount. Argument checks run the CLI in process where no server needs to start. API keys, /info
and /v1/models are in test_serving_auth.py.
"""

from __future__ import annotations

import base64
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

httpx = pytest.importorskip("httpx")
pytest.importorskip("fastapi")

from longformer2vec import Longformer2Vec
from tests.helpers_serving import Server, metric, post, slow_model_dir
from tests.test_runtime_cli import BLOCKER

LIMITS = {"max_inputs": 4, "max_tokens": 600, "max_body": 20000}
TEXTS = [
    "I enjoy taking long walks along the beach with my dog.",
    "",
    "The quick brown fox jumps over the lazy dog.",
    " ".join(f"token{i}" for i in range(90)),  # > 128 tokens: embedded as windows
]


@pytest.fixture(scope="module")
def model(tiny_fp32_dir: Path) -> Longformer2Vec:
    return Longformer2Vec(tiny_fp32_dir)


@pytest.fixture(scope="module")
def server(tiny_fp32_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """fp32, so vectors can be compared tightly whatever the batch: int8 quantizes activations per
    tensor, so an int8 vector moves by ~1e-4 with its batch mates (as bulk_encode vs encode does)."""
    flags = (
        f"--max-inputs-per-request={LIMITS['max_inputs']}",
        f"--max-tokens-per-request={LIMITS['max_tokens']}",
        f"--max-body-bytes={LIMITS['max_body']}",
        "--threads=1",
    )
    srv = Server(tiny_fp32_dir, tmp_path_factory.mktemp("serve") / "server.log", *flags)
    try:
        srv.wait_ready()
        yield srv
    finally:
        srv.stop()


# ---------------------------------------------------------------------------------- routes


def test_health_names_the_model(server: Server, model: Longformer2Vec) -> None:
    res = httpx.get(server.url + "/health")
    assert res.status_code == 200
    assert res.json() == {"status": "ok", "model": model.manifest.model_id, "providers": model.providers}


def test_openai_route_returns_the_python_api_vectors_in_order(server: Server, model: Longformer2Vec) -> None:
    res = post(server, "/v1/embeddings", {"input": TEXTS, "model": "anything"})
    assert res.status_code == 200, res.text
    body = res.json()
    assert body["object"] == "list" and body["model"] == model.manifest.model_id
    assert [d["index"] for d in body["data"]] == list(range(len(TEXTS)))
    assert all(d["object"] == "embedding" for d in body["data"])
    got = np.array([d["embedding"] for d in body["data"]], dtype=np.float32)
    expected = np.array([model.encode(t) for t in TEXTS], dtype=np.float32)
    assert got.shape == (len(TEXTS), model.vector_length)
    np.testing.assert_allclose(got, expected, atol=2e-5)
    n_tokens = sum(len(model.tokenizer.encode(t).ids) for t in TEXTS)
    assert n_tokens > model.max_length  # the long text counts all its tokens once
    assert body["usage"] == {"prompt_tokens": n_tokens, "total_tokens": n_tokens}


def test_openai_single_string_base64_and_dimensions(server: Server, model: Longformer2Vec) -> None:
    text = TEXTS[0]
    plain = post(server, "/v1/embeddings", {"input": text, "dimensions": model.vector_length})
    packed = post(server, "/v1/embeddings", {"input": text, "encoding_format": "base64"})
    assert plain.status_code == 200 and packed.status_code == 200, (plain.text, packed.text)
    assert len(plain.json()["data"]) == 1
    vector = np.array(plain.json()["data"][0]["embedding"], dtype=np.float32)
    decoded = np.frombuffer(base64.b64decode(packed.json()["data"][0]["embedding"]), dtype="<f4")
    np.testing.assert_array_equal(decoded, vector)
    np.testing.assert_allclose(vector, model.encode(text), atol=2e-5)


def test_tei_route_normalizes_by_default(server: Server, model: Longformer2Vec) -> None:
    expected = np.array([model.encode(t) for t in TEXTS[:3]], dtype=np.float32)
    unit = expected / np.linalg.norm(expected, axis=1, keepdims=True)
    res = post(server, "/embed", {"inputs": TEXTS[:3]})
    assert res.status_code == 200, res.text
    np.testing.assert_allclose(np.array(res.json()), unit, atol=2e-5)
    raw = post(server, "/embed", {"inputs": TEXTS[0], "normalize": False})
    np.testing.assert_allclose(np.array(raw.json()), expected[:1], atol=2e-5)


def test_tei_truncate(server: Server, model: Longformer2Vec) -> None:
    text = TEXTS[3]
    enc = model.tokenizer.encode(text)
    n, keep = len(enc.ids), model.max_length - 2  # content tokens that fit next to <s> and </s>
    head = text[: enc.offsets[keep][1]]  # content tokens 1..keep
    first = n - 1 - keep  # the shortest token-boundary tail that fits (the space before a word may cost one)
    while len(model.tokenizer.encode(text[enc.offsets[first][0] :]).ids) > model.max_length:
        first += 1
    tail = text[enc.offsets[first][0] :]
    full = post(server, "/embed", {"inputs": text, "normalize": False})
    right = post(server, "/embed", {"inputs": text, "normalize": False, "truncate": True})
    left = post(
        server,
        "/embed",
        {"inputs": text, "normalize": False, "truncate": True, "truncation_direction": "Left"},
    )
    assert full.headers["x-prompt-tokens"] == str(n)
    assert right.headers["x-prompt-tokens"] == str(model.max_length)
    assert left.headers["x-prompt-tokens"] == str(len(model.tokenizer.encode(tail).ids))
    assert int(left.headers["x-prompt-tokens"]) <= model.max_length
    np.testing.assert_allclose(full.json()[0], model.encode(text), atol=2e-5)  # windows, not truncation
    np.testing.assert_allclose(right.json()[0], model.encode(head), atol=2e-5)
    np.testing.assert_allclose(left.json()[0], model.encode(tail), atol=2e-5)
    assert not np.allclose(right.json()[0], full.json()[0], atol=1e-3)


# ------------------------------------------------------------------------ errors and limits


@pytest.mark.parametrize(
    ("route", "body", "message"),
    [
        ("/v1/embeddings", b"{not json", "not valid JSON"),
        ("/embed", b"{not json", "not valid JSON"),
        ("/v1/embeddings", b'["a list"]', "must be a JSON object, got array"),
        ("/v1/embeddings", {"model": "m"}, "'input' is required"),
        ("/embed", {"inputs": 7}, "'inputs' must be a string or a list of strings, got number"),
        ("/v1/embeddings", {"input": []}, "'input' must not be an empty list"),
        ("/embed", {"inputs": []}, "'inputs' must not be an empty list"),
        ("/v1/embeddings", {"input": ["ok", None]}, "'input[1]' must be a string, got null"),
        ("/v1/embeddings", {"input": [1, 2, 3]}, "only text is supported"),
        ("/v1/embeddings", {"input": [[1, 2, 3]]}, "only text is supported"),
        ("/v1/embeddings", {"input": "x", "encoding_format": "int8"}, "'encoding_format' must be"),
        ("/v1/embeddings", {"input": "x", "dimensions": 8}, "'dimensions' must be 32"),
        ("/v1/embeddings", {"input": "x", "model": 3}, "'model' must be a string"),
        ("/embed", {"inputs": "x", "normalize": "yes"}, "'normalize' must be a boolean, got string"),
        ("/embed", {"inputs": "x", "truncation_direction": "up"}, "'truncation_direction' must be"),
        # Hostile or odd bodies are the caller's error (422), never a 500 with a traceback.
        ("/v1/embeddings", b'{"input": ' + b"[" * 3000 + b"]" * 3000 + b"}", "nested too deeply"),
        ("/embed", b"[" * 3000 + b"]" * 3000, "nested too deeply"),
        ("/v1/embeddings", {"input": "x", "dimensions": 32.5}, "'dimensions' must be an integer, got number"),
        ("/v1/embeddings", b'{"input": ["ok", "\\udc00"]}', "'input[1]' is not valid Unicode"),
        ("/embed", b'{"inputs": "\\ud800"}', "'inputs' is not valid Unicode"),
    ],
)
def test_bad_requests_get_422_with_a_clear_message(
    server: Server, route: str, body: object, message: str
) -> None:
    res = post(server, route, body)
    assert res.status_code == 422, res.text
    _assert_error(res, route, message, "invalid_request_error" if route == "/v1/embeddings" else "Validation")


def test_an_integer_too_long_for_python_is_a_422_not_a_500(server: Server) -> None:
    """Python >= 3.11 refuses to parse integers of more than 4300 digits (ValueError, not JSONDecodeError)."""
    res = post(server, "/v1/embeddings", b'{"input": "x", "dimensions": ' + b"9" * 5000 + b"}")
    assert res.status_code == 422, res.text
    assert res.json()["error"]["type"] == "invalid_request_error"


def _assert_error(res: httpx.Response, route: str, message: str, kind: str) -> None:
    body = res.json()
    if route == "/v1/embeddings":
        assert message in body["error"]["message"] and body["error"]["type"] == kind, body
    else:
        assert message in body["error"] and body["error_type"] == kind, body


@pytest.mark.parametrize("route", ["/v1/embeddings", "/embed"])
def test_limits_answer_413_naming_the_limit_and_its_value(server: Server, route: str) -> None:
    field = "input" if route == "/v1/embeddings" else "inputs"
    res = post(server, route, {field: ["a"] * (LIMITS["max_inputs"] + 1)})
    message = res.json()["error"]["message"] if route == "/v1/embeddings" else res.json()["error"]
    assert res.status_code == 413 and "5 inputs in one request, over max-inputs-per-request 4" in message

    words = " ".join(["dog"] * 700)  # > 600 tokens
    res = post(server, route, {field: words})
    message = res.json()["error"]["message"] if route == "/v1/embeddings" else res.json()["error"]
    assert res.status_code == 413 and f"over max-tokens-per-request {LIMITS['max_tokens']}" in message

    res = post(server, route, {field: "x" * (LIMITS["max_body"] + 1)})
    message = res.json()["error"]["message"] if route == "/v1/embeddings" else res.json()["error"]
    assert res.status_code == 413 and f"over max-body-bytes {LIMITS['max_body']}" in message


def test_bad_requests_never_disturb_concurrent_good_ones(server: Server, model: Longformer2Vec) -> None:
    texts = [f"caller {i} says: " + " ".join(["walk"] * (i * 3)) for i in range(16)]
    expected = {t: np.array(model.encode(t), dtype=np.float32) for t in texts}
    results: dict[int, httpx.Response] = {}

    def call(i: int) -> None:
        if i % 4 == 3:  # a bad request among the good ones
            results[i] = post(server, "/v1/embeddings", {"input": ["fine", 42]})
        else:
            results[i] = post(server, "/v1/embeddings", {"input": [texts[i], texts[(i + 1) % 16]]})

    threads = [threading.Thread(target=call, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    for i, res in sorted(results.items()):
        if i % 4 == 3:
            assert res.status_code == 422
            continue
        assert res.status_code == 200, res.text
        got = [np.array(d["embedding"], dtype=np.float32) for d in res.json()["data"]]
        np.testing.assert_allclose(got[0], expected[texts[i]], atol=2e-5)
        np.testing.assert_allclose(got[1], expected[texts[(i + 1) % 16]], atol=2e-5)
    assert len(results) == 16


@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_same_text_same_vector_during_a_32_client_burst(
    tiny_fp32_dir: Path, tiny_int8_dir: Path, tmp_path: Path, precision: str
) -> None:
    """Micro-batching merges concurrent requests; a text's vector must still be the one it gets alone
    (int8 graphs scale each token's activations on its own, so their rows batch too)."""
    directory = tiny_fp32_dir if precision == "fp32" else tiny_int8_dir
    target = "The same text, sent by every client."
    alone = np.array(Longformer2Vec(directory, precision=precision).encode(target), dtype=np.float32)
    srv = Server(directory, tmp_path / "server.log", "--precision", precision, "--max-wait-ms", "20")
    try:
        srv.wait_ready()
        results: dict[int, httpx.Response] = {}

        def call(i: int) -> None:
            neighbours = ["walk " * (5 * i + 1), f"client {i}", "x" * (40 * (i % 5))][: 1 + i % 3]
            results[i] = post(srv, "/v1/embeddings", {"input": [*neighbours, target]})

        threads = [threading.Thread(target=call, args=(i,)) for i in range(32)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert len(results) == 32
        worst = 0.0
        for res in results.values():
            assert res.status_code == 200, res.text
            got = np.array(res.json()["data"][-1]["embedding"], dtype=np.float32)
            worst = max(worst, float(np.abs(got - alone).max()))
        metrics = dict(
            line.rsplit(" ", 1)
            for line in httpx.get(srv.url + "/metrics").text.splitlines()
            if line.startswith(("longformer2vec_batch_requests_sum", "longformer2vec_batch_requests_count"))
        )
        per_call = float(metrics["longformer2vec_batch_requests_sum"]) / float(
            metrics["longformer2vec_batch_requests_count"]
        )
        print(f"{precision}: max |burst - alone| = {worst:.2e}, {per_call:.1f} requests per model call")
        assert per_call > 1  # the burst really was merged
        assert worst <= 1e-5
    finally:
        srv.stop()


def test_metrics_count_requests_batches_and_queue(server: Server) -> None:
    before = httpx.get(server.url + "/metrics").text
    post(server, "/embed", {"inputs": ["one", "two", "three"]})
    post(server, "/embed", {"inputs": []})
    after = httpx.get(server.url + "/metrics")
    assert after.status_code == 200 and after.headers["content-type"].startswith("text/plain")
    text = after.text

    def delta(name: str, **labels: str) -> float:
        return metric(text, name, **labels) - metric(before, name, **labels)

    assert delta("longformer2vec_requests_total", route="/embed", status="200") == 1
    assert delta("longformer2vec_requests_total", route="/embed", status="422") == 1
    assert delta("longformer2vec_request_duration_seconds_count", route="/embed") == 2
    assert delta("longformer2vec_batch_size_count") == 1 and delta("longformer2vec_batch_size_sum") == 3
    assert delta("longformer2vec_batch_tokens_count") == 1 and delta("longformer2vec_batch_tokens_sum") >= 9
    assert metric(text, "longformer2vec_queue_depth") == 0
    assert metric(text, "longformer2vec_model_loaded") == 1


# --------------------------------------------------------------- full queue, graceful shutdown


def test_full_queue_gets_503_and_sigterm_finishes_the_request_in_flight(
    tiny_int8_dir: Path, tmp_path: Path
) -> None:
    """On the CLI-exported int8 model: the slow request runs alone, so it equals encode() exactly."""
    model_dir = slow_model_dir(tiny_int8_dir, tmp_path / "model")
    slow_text = "The quick brown fox jumps over the lazy dog. " * 200  # ~3,800 tokens: ~3,700 windows
    srv = Server(model_dir, tmp_path / "server.log", "--max-queue=1", "--threads=1")
    try:
        srv.wait_ready()
        slow: dict[str, httpx.Response] = {}
        sender = threading.Thread(target=lambda: slow.update(res=post(srv, "/embed", {"inputs": slow_text})))
        sender.start()
        deadline = time.monotonic() + 30
        while metric(httpx.get(srv.url + "/metrics").text, "longformer2vec_requests_in_model") < 1:
            assert time.monotonic() < deadline and sender.is_alive(), "slow request never reached the model"
            time.sleep(0.01)

        for route, field in (("/v1/embeddings", "input"), ("/embed", "inputs")):
            res = post(srv, route, {field: "one more"})
            assert res.status_code == 503 and res.headers["retry-after"] == "1", res.text
            _assert_error(
                res, route, "max-queue 1", "server_overloaded" if route == "/v1/embeddings" else "Overloaded"
            )

        os.kill(srv.proc.pid, signal.SIGTERM)  # while the slow request is still being embedded
        sender.join(60)
        res = slow["res"]
        assert res.status_code == 200, res.text
        # uvicorn re-raises SIGTERM after its graceful shutdown, so the exit status is -SIGTERM (or 0).
        assert srv.proc.wait(60) in (0, -signal.SIGTERM), srv.log()
        expected = np.array(Longformer2Vec(model_dir).encode(slow_text), dtype=np.float32)
        np.testing.assert_allclose(res.json()[0], expected / np.linalg.norm(expected), atol=2e-5)
        log = srv.log()
        assert "Shutting down" in log and "Finished server process" in log
        assert log.index("Shutting down") < log.index("Application shutdown complete")
    finally:
        srv.stop()


def test_requests_still_running_when_the_graceful_timeout_expires_get_a_json_503(
    tiny_fp32_dir: Path, tmp_path: Path
) -> None:
    """SIGTERM with --graceful-timeout-s 0.2 while one slow request is inside the model and another is
    queued behind it: both get a 503 in their route's format (not uvicorn's plain-text 500) and the log
    holds no traceback. The slow text (~7,600 tokens, thousands of windows) runs for seconds on the
    tiny model; the test acts once /metrics shows it inside the model."""
    slow_text = "The quick brown fox jumps over the lazy dog. " * 400
    model_dir = slow_model_dir(tiny_fp32_dir, tmp_path / "model")
    srv = Server(model_dir, tmp_path / "server.log", "--graceful-timeout-s=0.2", "--threads=1")
    try:
        srv.wait_ready()
        answers: dict[str, httpx.Response] = {}

        def call(route: str, body: dict) -> None:
            answers[route] = post(srv, route, body)

        senders = [
            threading.Thread(target=call, args=("/embed", {"inputs": slow_text})),
            threading.Thread(target=call, args=("/v1/embeddings", {"input": slow_text})),
        ]
        senders[0].start()
        deadline = time.monotonic() + 30
        while metric(httpx.get(srv.url + "/metrics").text, "longformer2vec_requests_in_model") < 1:
            assert time.monotonic() < deadline and senders[0].is_alive(), (
                "slow request never reached the model"
            )
            time.sleep(0.01)
        senders[1].start()
        while metric(httpx.get(srv.url + "/metrics").text, "longformer2vec_queue_depth") < 1:
            assert time.monotonic() < deadline and senders[1].is_alive(), "second request never queued"
            time.sleep(0.01)

        os.kill(srv.proc.pid, signal.SIGTERM)
        for sender in senders:
            sender.join(120)
        assert srv.proc.wait(120) in (0, -signal.SIGTERM), srv.log()
        log = srv.log()
        message = "the server is shutting down and its graceful timeout (0.2 s) expired before this request"
        tei, openai = answers["/embed"], answers["/v1/embeddings"]
        assert tei.status_code == 503 and tei.headers["content-type"] == "application/json", tei.text
        assert message in tei.json()["error"] and tei.json()["error_type"] == "Unhealthy", tei.text
        assert openai.status_code == 503 and openai.headers["content-type"] == "application/json", openai.text
        error = openai.json()["error"]
        assert message in error["message"] and error["type"] == "service_unavailable", openai.text
        assert tei.headers["retry-after"] == "1" and openai.headers["retry-after"] == "1"
        assert "Traceback" not in log and "CancelledError" not in log, log
        assert "POST /embed answered 503" in log and "POST /v1/embeddings answered 503" in log, log
    finally:
        srv.stop()


def test_each_request_is_tokenized_once(tiny_fp32_dir: Path) -> None:
    """In process: the encodings the server counts and checks are the ones it embeds."""
    from fastapi.testclient import TestClient

    from longformer2vec.serving.app import create_app, load_model
    from longformer2vec.serving.config import ServeConfig

    class CountingTokenizer:
        def __init__(self, tokenizer) -> None:
            self.tokenizer, self.texts_tokenized = tokenizer, 0

        def encode_batch(self, texts):
            self.texts_tokenized += len(texts)
            return self.tokenizer.encode_batch(texts)

        def encode(self, text):
            self.texts_tokenized += 1
            return self.tokenizer.encode(text)

    counting: list[CountingTokenizer] = []

    def factory(config: ServeConfig) -> Longformer2Vec:
        model = load_model(config)
        counting.append(CountingTokenizer(model.tokenizer))
        model._tokenizer = counting[0]
        return model

    texts = TEXTS[:3]
    with TestClient(create_app(ServeConfig(str(tiny_fp32_dir)), model_factory=factory)) as client:
        deadline = time.monotonic() + 30
        while client.get("/health").status_code != 200:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        res = client.post("/v1/embeddings", json={"input": texts})
    assert res.status_code == 200 and counting[0].texts_tokenized == len(texts)
    got = np.array([item["embedding"] for item in res.json()["data"]], dtype=np.float32)
    np.testing.assert_allclose(got, Longformer2Vec(str(tiny_fp32_dir)).encode_numpy(texts), atol=1e-6)


# ------------------------------------------------------------------------ startup and the CLI


def test_health_is_503_while_loading_and_on_load_failure(tiny_int8_dir: Path) -> None:
    """In process (the tiny model loads too fast to catch 'loading' from outside)."""
    from fastapi.testclient import TestClient

    from longformer2vec.serving.app import create_app, load_model
    from longformer2vec.serving.config import ServeConfig

    release = threading.Event()

    def slow_factory(config: ServeConfig) -> Longformer2Vec:
        assert release.wait(30)
        return load_model(config)

    with TestClient(create_app(ServeConfig(str(tiny_int8_dir)), model_factory=slow_factory)) as client:
        res = client.get("/health")
        assert (
            res.status_code == 503
            and res.json() == {"status": "loading"}
            and res.headers["retry-after"] == "1"
        )
        res = client.post("/v1/embeddings", json={"input": "hi"})
        assert res.status_code == 503 and "model is loading" in res.json()["error"]["message"]
        release.set()
        deadline = time.monotonic() + 30
        while client.get("/health").status_code != 200:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        assert client.post("/embed", json={"inputs": "hi"}).status_code == 200

    def broken_factory(config: ServeConfig) -> Longformer2Vec:
        raise ValueError("no such model")

    with TestClient(create_app(ServeConfig("nowhere"), model_factory=broken_factory)) as client:
        deadline = time.monotonic() + 30
        while (body := client.get("/health").json())["status"] == "loading":
            assert time.monotonic() < deadline
            time.sleep(0.01)
        assert body == {"status": "error", "error": "ValueError: no such model"}


def test_serve_exits_1_when_the_model_cannot_load(tmp_path: Path) -> None:
    srv = Server(tmp_path, tmp_path / "server.log")
    try:
        assert srv.proc.wait(90) == 1, srv.log()
        assert f"could not load model {tmp_path}" in srv.log() and "Traceback" not in srv.log()
    finally:
        srv.stop()


def test_serve_without_the_extra_names_the_install_command() -> None:
    blocker = BLOCKER.replace("('torch', 'transformers')", "('torch', 'transformers', 'fastapi', 'uvicorn')")
    # as when the package is really missing: ModuleNotFoundError naming the module
    blocker = blocker.replace(
        "raise ImportError(f'blocked import of {name}')", "raise ModuleNotFoundError(name, name=name)"
    )
    assert "ModuleNotFoundError" in blocker
    code = (
        blocker
        + """
import longformer2vec, longformer2vec.cli, longformer2vec.serving
for name in ('fastapi', 'uvicorn', 'starlette', 'prometheus_client'):
    assert name not in sys.modules, name
from longformer2vec.cli import main
raise SystemExit(main(['serve', '--model', 'some-dir']))
"""
    )
    res = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert res.returncode == 2, res.stderr
    assert "pip install -e '.[serve]'" in res.stderr and "Traceback" not in res.stderr


def test_serve_help_lists_the_limits() -> None:
    res = subprocess.run(
        [sys.executable, "-m", "longformer2vec", "serve", "--help"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert res.returncode == 0
    text = " ".join(res.stdout.split())
    for flag, default in (
        ("--max-inputs-per-request", 256),
        ("--max-tokens-per-request", 65536),
        ("--max-queue", 256),
        ("--max-batch-tokens", "2048 on the CPU, 8192 on a GPU"),
    ):
        assert re.search(
            re.escape(flag) + r" [A-Z_]+ (?:(?! --).)*\(default " + re.escape(str(default)) + r"\)", text
        ), flag


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--port", "99999"], "--port must be an integer from 1 to 65535, got 99999"),
        (["--port", "0"], "--port must be an integer from 1 to 65535, got 0"),
        (["--threads", "0"], "--threads must be an integer >= 1, got 0"),
        (["--max-queue", "0"], "--max-queue must be an integer >= 1, got 0"),
        (["--max-batch-tokens", "-5"], "--max-batch-tokens must be an integer >= 1, got -5"),
        (["--graceful-timeout-s", "-1"], "--graceful-timeout-s must be a finite number >= 0, got -1.0"),
        (["--max-wait-ms", "nan"], "--max-wait-ms must be a finite number >= 0, got nan"),
        (["--retry-after-s", "-1"], "--retry-after-s must be an integer >= 0, got -1"),
        (["--host", " "], "--host must be an address or a host name"),
        (["--api-key", ""], "the API key (--api-key or LONGFORMER2VEC_API_KEY) must not be empty"),
        (["--api-key", "two words"], "must be printable ASCII without spaces"),
        (["--metrics-require-key"], "--metrics-require-key needs a key: --api-key or LONGFORMER2VEC_API_KEY"),
    ],
)
def test_serve_refuses_a_bad_argument_in_one_line_before_starting(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, flags, message
) -> None:
    """In process: the CLI answers before it binds a port or loads a model (serve() is never called)."""
    from longformer2vec import cli
    from longformer2vec.serving import app

    monkeypatch.delenv("LONGFORMER2VEC_API_KEY", raising=False)
    monkeypatch.setattr(app, "serve", lambda config: pytest.fail(f"serve() called with {config}"))
    assert cli.main(["serve", "--model", str(tmp_path), *flags]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and message in err, err


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--model", "m", "--port", "abc"], "error: argument --port: invalid int value: 'abc'"),
        (["--model", "m", "--pooling", "max"], "error: argument --pooling: invalid choice: 'max'"),
        ([], "error: the following arguments are required: --model"),
    ],
)
def test_serve_parse_errors_are_one_line_too(capsys: pytest.CaptureFixture[str], flags, message) -> None:
    from longformer2vec import cli

    with pytest.raises(SystemExit) as exited:
        cli.main(["serve", *flags])
    err = capsys.readouterr().err
    assert exited.value.code == 2 and err.startswith(message) and err.count("\n") == 1, err
    assert err.endswith("(see longformer2vec serve --help)\n")


def test_serve_refuses_a_model_path_that_does_not_exist(tmp_path: Path) -> None:
    missing = tmp_path / "no" / "such-model"
    res = subprocess.run(
        [sys.executable, "-m", "longformer2vec", "serve", "--model", str(missing)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert res.returncode == 2, res.stderr
    assert res.stderr == f"error: --model {str(missing)!r}: no such directory, and not a hub id\n"


def test_out_of_range_port_is_one_line_and_exit_2_not_an_abort(tiny_fp32_dir: Path) -> None:
    """As a real process with a real model: the port was once checked by uvicorn after the model load
    started, a traceback and an abort (exit 134) from the loading thread."""
    cmd = [sys.executable, "-m", "longformer2vec", "serve", "--model", str(tiny_fp32_dir), "--port", "99999"]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    assert res.returncode == 2, res.stderr
    assert res.stderr == "error: --port must be an integer from 1 to 65535, got 99999\n"
    assert res.stdout == ""


def test_a_port_in_use_is_one_line_and_exit_1_before_the_model_loads(tiny_fp32_dir: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        cmd = [sys.executable, "-m", "longformer2vec", "serve", "--model", str(tiny_fp32_dir)]
        cmd += ["--host", "127.0.0.1", "--port", str(port)]
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    assert res.returncode == 1, res.stderr
    assert res.stderr == f"error: cannot listen on 127.0.0.1:{port}: Address already in use\n"


def test_an_unresolvable_host_is_a_usage_error(tmp_path: Path) -> None:
    cmd = [sys.executable, "-m", "longformer2vec", "serve", "--model", str(tmp_path)]
    res = subprocess.run(
        [*cmd, "--host", "no-such-host.invalid"], capture_output=True, text=True, timeout=120, check=False
    )
    assert res.returncode == 2, res.stderr
    assert res.stderr.startswith("error: --host 'no-such-host.invalid' is not an address this machine can")
    assert res.stderr.count("\n") == 1
