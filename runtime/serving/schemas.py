"""The request and response bodies of every route, as pydantic models: one declaration that both the
OpenAPI document (`openapi`) and the request parser (`parsing`) use, so what the schema allows is what
the server accepts.

Text fields (`input`, `inputs`) are typed here and checked first by `parsing.texts_field`, whose
messages say more (token ids, the index of a bad item, a lone surrogate); limits that depend on the
running server (inputs per request, the vector length) are added to the document by `openapi`.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel

Texts = str | list[str]


class _Body(BaseModel):
    # Unknown fields are ignored, as OpenAI's and TEI's clients expect of a compatible server; the ones
    # declared are checked strictly (no "1" for 1, no 1 for true).
    model_config = ConfigDict(extra="ignore", strict=True)


class OpenAIEmbeddingRequest(_Body):
    """`POST /v1/embeddings` (and `/embeddings`), OpenAI's body."""

    input: Texts = Field(description="A text or a non-empty list of texts. Token-id arrays are refused.")
    model: str | None = Field(None, description="Accepted and ignored: the server serves one model.")
    encoding_format: Literal["float", "base64"] | None = Field(
        None, description="`float` (default) or `base64` (little-endian float32)."
    )
    dimensions: int | None = Field(None, description="Must equal the model's vector length if given.")
    user: str | None = Field(None, description="Accepted and ignored.")


class TEIEmbedRequest(_Body):
    """`POST /embed` (and `POST /`, `POST /invocations`), text-embeddings-inference's body."""

    inputs: Texts = Field(description="A text or a non-empty list of texts.")
    normalize: bool | None = Field(None, description="L2-normalize the vectors (default true).")
    truncate: bool | None = Field(
        None,
        description="Cut texts to the model maximum instead of embedding them as windows (default false).",
    )
    truncation_direction: Literal["left", "right", "Left", "Right"] | None = Field(
        None, description="Which end `truncate` keeps (default right: the start is kept)."
    )
    prompt_name: None = Field(None, description="Not supported: this model has no prompts.")


class OpenAIEmbedding(BaseModel):
    object: Literal["embedding"]
    index: int
    embedding: list[float] | str


class OpenAIUsage(BaseModel):
    prompt_tokens: int
    total_tokens: int


class OpenAIEmbeddingResponse(BaseModel):
    object: Literal["list"]
    data: list[OpenAIEmbedding]
    model: str
    usage: OpenAIUsage


class TEIEmbedResponse(RootModel[list[list[float]]]):
    """One vector per input, in input order."""


class OpenAIErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None
    code: str | None


class OpenAIError(BaseModel):
    """OpenAI's error body; the official client maps the status to its exception class."""

    error: OpenAIErrorDetail


class TEIError(BaseModel):
    """text-embeddings-inference's error body."""

    error: str
    error_type: str


class ModelCard(BaseModel):
    id: str
    object: Literal["model"]
    created: int
    owned_by: str


class ModelList(BaseModel):
    object: Literal["list"]
    data: list[ModelCard]


class Health(BaseModel):
    status: Literal["ok", "loading", "error"]
    model: str | None = None
    providers: list[str] | None = None
    error: str | None = None


class Info(BaseModel):
    """TEI's `Info` with this server's values (`GET /info`)."""

    model_id: str
    model_sha: str | None
    model_dtype: str
    served_model_name: str
    model_type: dict[str, Any]
    max_concurrent_requests: int
    max_input_length: int
    max_batch_tokens: int
    max_batch_requests: int | None
    max_client_batch_size: int
    auto_truncate: bool
    tokenization_workers: int
    version: str
    sha: str | None
    docker_label: str | None


REQUEST_MODELS: tuple[type[BaseModel], ...] = (OpenAIEmbeddingRequest, TEIEmbedRequest)
