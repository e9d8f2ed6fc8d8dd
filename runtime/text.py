"""What counts as a text: the one check the API, CLI, server, corpus job and Ray share.

A text is a ``str`` that UTF-8 can encode. Python strings can hold lone surrogates (``"\\ud800"``, from
JSON escapes or ``surrogateescape`` decoding) that no tokenizer accepts; they are refused with their
position instead of failing deep inside the tokenizer. The empty string is a text (it embeds the
special tokens alone).
"""

from __future__ import annotations

from collections.abc import Iterable


def kind_of(value: object) -> str:
    """``null``, ``an integer``, ``a list``...: how errors name a value that is not a string."""
    names = {type(None): "null", bool: "a boolean", int: "an integer", float: "a float", list: "a list"}
    if type(value) in names:
        return names[type(value)]
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, (bytes, bytearray)):
        return "bytes (decode them to str first)"
    return f"a {type(value).__name__}"


def text_problem(value: object) -> str | None:
    """Why ``value`` is not a usable text (``"is null, not a string"``), or None when it is one."""
    if not isinstance(value, str):
        return f"is {kind_of(value)}, not a string"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        return (
            f"is not valid Unicode: lone surrogate {value[exc.start]!r} at character {exc.start} "
            "(decode the source text with errors='replace' or fix its escapes)"
        )
    return None


def check_text(value: object, where: str) -> str:
    """``value`` if it is a text, else ``TypeError`` (not a string) or ``ValueError`` (bad Unicode)
    naming ``where`` (``texts[3]``, ``docs.jsonl line 7``)."""
    problem = text_problem(value)
    if problem is None:
        return value  # type: ignore[return-value]
    raise (TypeError if not isinstance(value, str) else ValueError)(f"{where} {problem}")


def check_texts(texts: Iterable[object], name: str = "texts") -> list[str]:
    """A list of texts, or an error naming the first bad item by its index."""
    if isinstance(texts, (str, bytes, bytearray)) or not isinstance(texts, Iterable):
        raise TypeError(f"{name} must be a list of str, got {kind_of(texts)}")
    return [check_text(item, f"{name}[{index}]") for index, item in enumerate(texts)]
