"""Token counting and optional truncation of request texts, before they are queued.

Done per request so a limit breach or a tokenizer failure answers that caller alone. Counts are the
tokens the model sees for the text, special tokens included (`<s>`, `</s>`); a text longer than
`max_length` counts all its tokens once, although the runtime embeds it as overlapping windows.
"""

from __future__ import annotations

from collections.abc import Sequence

from tokenizers import Encoding, Tokenizer

from ..batching import content_span

DIRECTIONS = ("right", "left")


def truncate_text(tokenizer: Tokenizer, text: str, max_length: int, direction: str = "right") -> str:
    """The longest head (right truncation) or tail (left) of `text` that tokenizes to <= max_length.

    Cut at a token's character offset, then re-tokenized: byte-level BPE may merge differently at the
    new edge, so the cut moves one token further until the text fits. The runtime then embeds exactly
    that text, so the vector equals `Longformer2Vec.encode(truncated_text)`.
    """
    return _truncated(tokenizer, text, tokenizer.encode(text), max_length, direction)[0]


def _truncated(
    tokenizer: Tokenizer, text: str, enc: Encoding, max_length: int, direction: str
) -> tuple[str, Encoding]:
    """:func:`truncate_text` from the text's encoding `enc`; also returns the kept text's encoding (the
    one the fitting test made), so no caller tokenizes the text or its cut again."""
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {DIRECTIONS}, got {direction!r}")
    if len(enc.ids) <= max_length:
        return text, enc
    first, end = content_span(enc.special_tokens_mask)
    n_specials = len(enc.ids) - (end - first)
    keep = max_length - n_specials
    if keep < 1:
        raise ValueError(f"max_length {max_length} leaves no room next to {n_specials} special tokens")
    offsets = enc.offsets
    if direction == "right":
        cuts = (text[: offsets[k][1]] for k in range(first + keep - 1, first - 1, -1))  # last token kept
    else:
        cuts = (text[offsets[k][0] :] for k in range(end - keep, end))  # first token kept
    for candidate in cuts:
        candidate_enc = tokenizer.encode(candidate)
        if len(candidate_enc.ids) <= max_length:
            return candidate, candidate_enc
    return "", tokenizer.encode("")


def prepare_encodings(
    tokenizer: Tokenizer, texts: Sequence[str], max_length: int, truncate: bool, direction: str = "right"
) -> list[Encoding]:
    """Each text's encoding (its token count is ``len(encoding.ids)``), of the text truncated to
    `max_length` tokens when asked. The runtime embeds these encodings as they are
    (:meth:`Longformer2Vec.encode_encodings`), so a request is tokenized once."""
    encodings = tokenizer.encode_batch(list(texts))
    if truncate:
        for i, enc in enumerate(encodings):
            if len(enc.ids) > max_length:
                encodings[i] = _truncated(tokenizer, texts[i], enc, max_length, direction)[1]
    return encodings
