"""VectorHub-style model cards: tiny front-matter parser so the runtime needs no PyYAML."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .contract import Manifest

CARD_FIELDS = (
    "model_id",
    "model_name",
    "vector_length",
    "paper",
    "repo",
    "release_date",
    "installation",
    "category",
    "short_description",
)


@dataclass
class ModelDefinition:
    """Parsed model card; mirrors VectorHub's `ModelDefinition` fields."""

    model_id: str = ""
    model_name: str = ""
    vector_length: str = ""
    paper: str = ""
    repo: str = ""
    release_date: str = ""
    installation: str = ""
    category: str = ""
    short_description: str = ""
    description: str = ""
    extra: dict[str, str] = field(default_factory=dict)


def _unquote(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        value = value[1:-1]
    return value


def parse_card(text: str) -> ModelDefinition:
    """Parse `---` front matter of `key: value` lines plus the markdown body; unknown keys go to `extra`.

    Tolerant on purpose: a malformed card should never stop a model from loading.
    """
    lines = text.lstrip("\ufeff").splitlines()
    meta: dict[str, str] = {}
    body_start = 0
    if lines and lines[0].strip() == "---":
        for i, line in enumerate(lines[1:], start=1):
            if line.strip() == "---":
                body_start = i + 1
                break
            key, sep, value = line.partition(":")
            if sep and key.strip() and not key.startswith((" ", "\t", "#")):
                meta[key.strip()] = _unquote(value)
        else:  # no closing fence: treat everything as body
            meta, body_start = {}, 0
    known = {k: meta.pop(k) for k in CARD_FIELDS if k in meta}
    description = "\n".join(lines[body_start:]).strip()
    return ModelDefinition(**known, description=description, extra=meta)


def load_card(path: str | Path) -> ModelDefinition:
    """Read and parse a card file."""
    return parse_card(Path(path).read_text(encoding="utf-8"))


def definition_for(manifest: Manifest) -> ModelDefinition:
    """The directory's card, else the packaged card of its model id, else a minimal generated one."""
    if manifest.card_path.is_file():
        try:
            return load_card(manifest.card_path)
        except (OSError, UnicodeDecodeError):
            pass
    from longformer2vec.models import card_path, default_card

    packaged = card_path(manifest.model_id)
    if packaged is not None:
        return load_card(packaged)
    return parse_card(default_card(manifest.model_id, manifest.vector_length))
