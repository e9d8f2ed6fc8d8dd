"""Input side of a corpus run: the format of a file, its rows in file order, and why a row is bad.

A bad row is yielded as a `Row` with an `error` rather than raised, so the run decides whether to stop or
skip it. Problems with the file as a whole (missing, not Parquet, wrong columns) raise `CorpusError`,
and :func:`check_input` finds them before anything is written.
"""

from __future__ import annotations

import json
from codecs import BOM_UTF8
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import BinaryIO, NamedTuple

import pyarrow as pa
import pyarrow.parquet as pq

from ..errors import CorpusError
from ..text import kind_of, text_problem

INPUT_FORMATS = ("jsonl", "txt", "parquet")
_INPUT_SUFFIXES = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".txt": "txt",
    ".parquet": "parquet",
    ".pq": "parquet",
}
INT64_MAX = 2**63 - 1
PARQUET_BATCH_ROWS = 1024
TXT_HAS_NO_FIELDS = "plain text input has no fields: ids are line numbers; drop --id-field"


class Row(NamedTuple):
    """One input record; `error` says why it is bad (then `text` is None); `kept` holds the values of
    the fields copied to the output (`--keep-fields`), in their order."""

    number: int
    id: int | str | None
    text: str | None
    error: str | None = None
    kept: tuple[object, ...] = ()


RESERVED_COLUMNS = ("id", "vector")  # the output's own columns


def check_keep_fields(fmt: str, keep: Sequence[str]) -> None:
    """Kept fields must be distinct, and not named like the output's own columns; plain text has only
    its line, kept as `text`."""
    if len(set(keep)) != len(keep):
        raise CorpusError(f"--keep-fields names a field twice: {','.join(keep)}")
    clash = [name for name in keep if name in RESERVED_COLUMNS]
    if clash:
        raise CorpusError(
            f"--keep-fields cannot keep {clash[0]!r}: the output has its own {clash[0]!r} column "
            "(ids come from --id-field)"
        )
    if fmt == "txt" and any(name != "text" for name in keep):
        raise CorpusError("plain text input has one field, its line: --keep-fields can only keep 'text'")


def kept_json_value(value: object) -> str | None:
    """A kept JSONL value as the output's string column holds it: strings as they are, null as null,
    anything else (numbers, lists, objects) as its JSON text, so every part has the same column type."""
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def input_format(path: Path, explicit: str | None = None) -> str:
    """The input format: `explicit`, else from the file suffix."""
    if explicit is not None:
        if explicit not in INPUT_FORMATS:
            raise CorpusError(f"input format must be one of {list(INPUT_FORMATS)}, got {explicit!r}")
        return explicit
    fmt = _INPUT_SUFFIXES.get(path.suffix.lower())
    if fmt is None:
        raise CorpusError(
            f"cannot tell the format of {path} from its suffix; name it with --format "
            f"({', '.join(INPUT_FORMATS)}) or use .jsonl, .txt or .parquet"
        )
    return fmt


def check_input(
    path: Path, fmt: str, text_field: str, id_field: str | None, keep: Sequence[str] = ()
) -> list[pa.Field]:
    """Fail now, naming the path, on an input no row could be read from: before the run writes anything.
    Returns the output columns of the kept fields (Parquet columns keep their type; JSONL and plain-text
    values are strings)."""
    if not path.is_file():
        raise CorpusError(f"input {path} is not a file")
    if fmt == "txt" and id_field is not None:
        raise CorpusError(TXT_HAS_NO_FIELDS)
    check_keep_fields(fmt, keep)
    if fmt == "parquet":
        pf = _open_parquet(path)
        _parquet_columns(pf, path, text_field, id_field, keep)
        return [pa.field(name, pf.schema_arrow.field(name).type) for name in keep]
    return [pa.field(name, pa.string()) for name in keep]


# ------------------------------------------------------------------------------------------------ checks
def text_error(value: object) -> str | None:
    """Why `value` is not usable text, or None: the runtime's one text check (:mod:`..text`), worded for
    a row. Empty strings are valid (they embed `<s></s>`)."""
    problem = text_problem(value)
    return None if problem is None else f"text {problem}"


def _id_error(value: object) -> str | None:
    if value is None:
        return "id is null"
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        return f"id is {kind_of(value)}, not an integer or string"
    if isinstance(value, int) and not -INT64_MAX - 1 <= value <= INT64_MAX:
        return f"id {value} does not fit in int64"
    return None


# ------------------------------------------------------------------------------------------- text files
def _lines(f: BinaryIO) -> Iterator[tuple[int, bytes]]:
    """(1-based line number, raw line) with a UTF-8 byte order mark (Windows editors) dropped from line 1."""
    for number, raw in enumerate(f, 1):
        yield number, raw[len(BOM_UTF8) :] if number == 1 and raw.startswith(BOM_UTF8) else raw


def _utf8_error(exc: UnicodeDecodeError) -> str:
    return f"not valid UTF-8 ({exc.reason} at byte {exc.start} of the line)"


def _jsonl_row(number: int, raw: bytes, text_field: str, id_field: str | None, keep: Sequence[str]) -> Row:
    try:
        line = raw.decode("utf-8")  # JSON lines are UTF-8; json.loads would guess another encoding
    except UnicodeDecodeError as exc:
        return Row(number, None, None, _utf8_error(exc))
    try:
        obj = json.loads(line)
    except ValueError as exc:
        return Row(number, None, None, f"invalid JSON ({exc})")
    if not isinstance(obj, dict):
        return Row(number, None, None, f"line is {kind_of(obj)}, not a JSON object")
    if text_field not in obj:
        return Row(number, None, None, f"missing field {text_field!r}")
    text = obj[text_field]
    error = text_error(text)
    row_id: object = number
    if error is None and id_field is not None:
        if id_field not in obj:
            error = f"missing id field {id_field!r}"
        else:
            row_id = obj[id_field]
            error = _id_error(row_id)
    if error is not None:
        return Row(number, None, None, error)
    kept = tuple(kept_json_value(obj.get(name)) for name in keep)  # a missing field is kept as null
    return Row(number, row_id, text, kept=kept)  # type: ignore[arg-type]


def _read_jsonl(
    path: Path, text_field: str, id_field: str | None, skip: int, keep: Sequence[str]
) -> Iterator[Row]:
    """Every non-blank line is a JSON object; blank lines are ignored (still counted as lines)."""
    with open(path, "rb") as f:
        for number, raw in _lines(f):
            if number > skip and raw.strip():
                yield _jsonl_row(number, raw, text_field, id_field, keep)


def _read_txt(path: Path, skip: int, keep: Sequence[str]) -> Iterator[Row]:
    """One document per line (empty lines are empty documents); ids are line numbers."""
    with open(path, "rb") as f:
        for number, raw in _lines(f):
            if number <= skip:
                continue
            line = raw[:-1] if raw.endswith(b"\n") else raw
            line = line[:-1] if line.endswith(b"\r") else line
            try:
                text = line.decode("utf-8")
                yield Row(number, number, text, kept=(text,) * len(keep))  # the only field is `text`
            except UnicodeDecodeError as exc:
                yield Row(number, None, None, _utf8_error(exc))


# ----------------------------------------------------------------------------------------------- parquet
def _open_parquet(path: Path) -> pq.ParquetFile:
    try:
        return pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as exc:
        raise CorpusError(f"input {path} is not a readable Parquet file ({exc})") from exc


def _is_string_type(t: pa.DataType) -> bool:
    if pa.types.is_dictionary(t):
        t = t.value_type
    return pa.types.is_string(t) or pa.types.is_large_string(t) or str(t) == "string_view"


def _parquet_columns(
    pf: pq.ParquetFile, path: Path, text_field: str, id_field: str | None, keep: Sequence[str] = ()
) -> list[str]:
    """Check the columns exist with usable types up front: a wrong column type would make every row bad."""
    schema = pf.schema_arrow
    for name in keep:
        if name not in schema.names:
            raise CorpusError(f"{path} has no column {name!r} to keep (columns: {', '.join(schema.names)})")
    for name, role in ((text_field, "text"), (id_field, "id")):
        if name is None:
            continue
        if name not in schema.names:
            raise CorpusError(f"{path} has no column {name!r} (columns: {', '.join(schema.names)})")
        t = schema.field(name).type
        ok = _is_string_type(t) or (role == "id" and pa.types.is_integer(t))
        if not ok:
            wanted = "string" if role == "text" else "integer or string"
            raise CorpusError(f"{path} column {name!r} has type {t}, expected {wanted}")
    named = [text_field] + ([id_field] if id_field is not None else [])
    return named + [name for name in keep if name not in named]


def _row_groups_after(pf: pq.ParquetFile, skip: int) -> tuple[list[int], int]:
    """The row groups that hold rows after `skip`, and the rows before the first of them (not read)."""
    groups, before = [], 0
    for g in range(pf.metadata.num_row_groups):
        n = pf.metadata.row_group(g).num_rows
        if not groups and before + n <= skip:
            before += n
        else:
            groups.append(g)
    return groups, before


def _batches(
    pf: pq.ParquetFile, path: Path, columns: list[str], groups: list[int]
) -> Iterator[pa.RecordBatch]:
    """`iter_batches`, with a corrupt page reported as a `CorpusError` naming the file."""
    batches = pf.iter_batches(batch_size=PARQUET_BATCH_ROWS, row_groups=groups, columns=columns)
    while True:
        try:
            batch = next(batches)
        except StopIteration:
            return
        except (pa.ArrowException, OSError) as exc:
            raise CorpusError(f"cannot read {path}: {exc}") from exc
        yield batch


def _read_parquet(
    path: Path, text_field: str, id_field: str | None, skip: int, keep: Sequence[str]
) -> Iterator[Row]:
    pf = _open_parquet(path)
    columns = _parquet_columns(pf, path, text_field, id_field, keep)
    groups, number = _row_groups_after(pf, skip)  # whole row groups are skipped without reading them
    if not groups:
        return
    for batch in _batches(pf, path, columns, groups):
        texts = batch.column(text_field).to_pylist()
        row_ids = batch.column(id_field).to_pylist() if id_field is not None else [None] * len(texts)
        kept_columns = [batch.column(name).to_pylist() for name in keep]
        for i, (text, row_id) in enumerate(zip(texts, row_ids, strict=True)):
            number += 1
            if number <= skip:
                continue
            error = text_error(text)
            if error is None and id_field is not None:
                error = _id_error(row_id)
            if error:
                yield Row(number, None, None, error)
            else:
                kept = tuple(column[i] for column in kept_columns)
                yield Row(number, number if id_field is None else row_id, text, kept=kept)


# ------------------------------------------------------------------------------------------------ entry
def read_rows(
    path: Path,
    fmt: str,
    text_field: str = "text",
    id_field: str | None = None,
    skip: int = 0,
    keep: Sequence[str] = (),
) -> Iterator[Row]:
    """Rows after the first `skip` input rows, in file order (the order resume relies on), each with
    the values of the `keep` fields."""
    if fmt == "jsonl":
        return _read_jsonl(path, text_field, id_field, skip, keep)
    if fmt == "txt":
        if id_field is not None:
            raise CorpusError(TXT_HAS_NO_FIELDS)
        return _read_txt(path, skip, keep)
    return _read_parquet(path, text_field, id_field, skip, keep)


def count_rows(path: Path, fmt: str) -> int:
    """Input rows (lines, or Parquet rows) for the progress total; a fast byte scan for text files."""
    if fmt == "parquet":
        return _open_parquet(path).metadata.num_rows
    lines, last = 0, b"\n"
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            lines += block.count(b"\n")
            last = block[-1:]
    return lines + (last != b"\n")
