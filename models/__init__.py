"""Packaged VectorHub-format model cards, copied into exported directories as `card.md`."""

from __future__ import annotations

from pathlib import Path

_HERE = Path(__file__).resolve().parent
_CARDS = {
    "allenai/longformer-base-4096": "longformer-base-4096.md",
    "allenai/longformer-large-4096": "longformer-large-4096.md",
}


def card_path(model_id: str) -> Path | None:
    """Packaged card for a known hub id, else None."""
    name = _CARDS.get(str(model_id).strip().rstrip("/"))
    return _HERE / name if name else None


def _hub_url(model_id: str) -> str:
    """The hub page of an ``org/name`` id; empty for a local checkpoint (a path is no hub repository)."""
    name = str(model_id).strip()
    local = name.startswith(("/", ".", "~")) or "\\" in name or Path(name).expanduser().exists()
    return "" if local or name.count("/") != 1 else f"https://huggingface.co/{name}"


def default_card(model_id: str, vector_length: int) -> str:
    """Minimal card in the same front-matter format for models without a packaged card."""
    short = f"Longformer encoder {model_id} exported to ONNX for long-document embeddings."
    return (
        "---\n"
        f'model_id: "text/{str(model_id).rsplit("/", 1)[-1]}"\n'
        f'model_name: "{model_id}"\n'
        f'vector_length: "{vector_length} (default)"\n'
        'paper: "https://arxiv.org/abs/2004.05150"\n'
        f'repo: "{_hub_url(model_id)}"\n'
        'release_date: ""\n'
        'installation: "pip install -e . (in the longformer2vec checkout)"\n'
        "category: text\n"
        f"short_description: {short}\n"
        "---\n\n"
        "## Description\n\n"
        f"{short} Vectors are the masked mean of the last hidden state.\n\n"
        "## Example\n\n"
        "```python\n"
        "from longformer2vec import Longformer2Vec\n"
        f'model = Longformer2Vec("{model_id}")\n'
        'model.encode("I enjoy taking long walks along the beach with my dog.")\n'
        "```\n"
    )
