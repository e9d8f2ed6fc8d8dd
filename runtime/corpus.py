"""Streaming, resumable corpus embedding behind `longformer2vec encode` (needs the `corpus` extra).

Why it is built this way:

* Memory stays flat as the corpus grows: input is read line by line (JSONL, text) or batch by batch
  (Parquet `iter_batches`), embedded in small chunks, and at most one part of vectors is held.
* A kill loses at most one part of work and never duplicates a row. While running, the output path
  has a sibling directory `OUTPUT.parts/` holding `state.json` (what is being embedded: input identity,
  fields, model sha256, options) and `part-NNNNNN.parquet` files. Each part is written to a `.tmp` name,
  fsynced and `os.replace`d, so it exists whole or not at all. Its metadata records the input rows it
  consumed, `rows_start`..`rows_end` (bad rows included), so a rerun skips exactly `rows_end` rows of
  the last part and continues; leftover `.tmp` files are deleted.
* When the input is exhausted the parts are combined, one at a time, into the final file (written to a
  temp name and replaced too), then the parts directory is removed. A kill during the combine leaves
  the parts in place, and the rerun combines again.

Input row numbers are 1-based: the physical line for JSONL and text, the row for Parquet. They name bad
rows in messages and are the ids when no `id_field` is given.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import sys
import time
from codecs import BOM_UTF8
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from .errors import CORPUS_INSTALL_HINT, Longformer2VecError

if TYPE_CHECKING:
    from .encoder import Longformer2Vec

__all__ = ["CORPUS_INSTALL_HINT", "CorpusError", "EncodeResult", "Row", "encode_corpus", "read_rows"]
INPUT_FORMATS = ("jsonl", "txt", "parquet")
OUTPUT_FORMATS = ("parquet", "npy")
BAD_ROW_POLICIES = ("fail", "skip")
_INPUT_SUFFIXES = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".txt": "txt",
    ".parquet": "parquet",
    ".pq": "parquet",
}
STATE_VERSION = 1
META = "longformer2vec."
INT64_MAX = 2**63 - 1
# Test hook, not a user feature: after committing this many parts the process ends with os._exit(137),
# exactly like a SIGKILL between two parts, so resume tests are deterministic instead of racing a timer.
TEST_EXIT_AFTER_PARTS_ENV = "LONGFORMER2VEC_TEST_EXIT_AFTER_PARTS"


class CorpusError(Longformer2VecError):
    """A corpus run cannot go on: bad row under `fail`, mismatched resume state, unreadable input."""


class Row(NamedTuple):
    """One input record; `error` says why it is bad (then `text` is None)."""

    number: int
    id: int | str | None
    text: str | None
    error: str | None = None


# ----------------------------------------------------------------------------------------------- formats
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


def output_format(path: Path) -> str:
    fmt = path.suffix.lower().lstrip(".")
    if fmt not in OUTPUT_FORMATS:
        raise CorpusError(f"output must end in .parquet or .npy, got {path}")
    return fmt


def ids_path(output: Path) -> Path:
    """Where `.npy` output keeps its ids (same row order): `out.npy` -> `out.ids.parquet`."""
    return output.with_suffix(".ids.parquet")


def rejects_path(output: Path) -> Path:
    """Where skipped bad rows are listed (JSON lines `{"row": n, "reason": ...}`): `out.rejects.jsonl`."""
    return output.with_suffix(".rejects.jsonl")


def parts_dir(output: Path) -> Path:
    return output.with_name(output.name + ".parts")


# ----------------------------------------------------------------------------------------------- readers
def _check_text(value: object) -> str | None:
    """Why `value` is not usable text, or None. Empty strings are valid (they embed `<s></s>`)."""
    if not isinstance(value, str):
        return f"text is {_kind(value)}, not a string"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "text is not valid Unicode (lone surrogate)"
    return None


def _check_id(value: object) -> str | None:
    if value is None:
        return "id is null"
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        return f"id is {_kind(value)}, not an integer or string"
    if isinstance(value, int) and not -INT64_MAX - 1 <= value <= INT64_MAX:
        return f"id {value} does not fit in int64"
    return None


def _kind(value: object) -> str:
    names = {type(None): "null", bool: "a boolean", int: "an integer", float: "a float", list: "a list"}
    return names.get(type(value), "an object" if isinstance(value, dict) else type(value).__name__)


def _lines(f: BinaryIO) -> Iterator[tuple[int, bytes]]:
    """(1-based line number, raw line) with a UTF-8 byte order mark (Windows editors) dropped from line 1."""
    for number, raw in enumerate(f, 1):
        yield number, raw[len(BOM_UTF8) :] if number == 1 and raw.startswith(BOM_UTF8) else raw


def _read_jsonl(path: Path, text_field: str, id_field: str | None, skip: int) -> Iterator[Row]:
    """Every non-blank line is a JSON object; blank lines are ignored (still counted as lines)."""
    with open(path, "rb") as f:
        for number, raw in _lines(f):
            if number <= skip or not raw.strip():
                continue
            try:
                obj = json.loads(raw)
            except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
                yield Row(number, None, None, f"invalid JSON ({exc})")
                continue
            if not isinstance(obj, dict):
                yield Row(number, None, None, f"line is {_kind(obj)}, not a JSON object")
                continue
            if text_field not in obj:
                yield Row(number, None, None, f"missing field {text_field!r}")
                continue
            text = obj[text_field]
            error = _check_text(text)
            row_id: object = number
            if error is None and id_field is not None:
                if id_field not in obj:
                    error = f"missing id field {id_field!r}"
                else:
                    row_id = obj[id_field]
                    error = _check_id(row_id)
            if error is not None:
                yield Row(number, None, None, error)
            else:
                yield Row(number, row_id, text)  # type: ignore[arg-type]


def _read_txt(path: Path, skip: int) -> Iterator[Row]:
    """One document per line (empty lines are empty documents); ids are line numbers."""
    with open(path, "rb") as f:
        for number, raw in _lines(f):
            if number <= skip:
                continue
            line = raw[:-1] if raw.endswith(b"\n") else raw
            line = line[:-1] if line.endswith(b"\r") else line
            try:
                yield Row(number, number, line.decode("utf-8"))
            except UnicodeDecodeError as exc:
                yield Row(number, None, None, f"not valid UTF-8 ({exc.reason} at byte {exc.start})")


def _is_string_type(t: pa.DataType) -> bool:
    if pa.types.is_dictionary(t):
        t = t.value_type
    return pa.types.is_string(t) or pa.types.is_large_string(t) or str(t) == "string_view"


def _parquet_columns(pf: pq.ParquetFile, path: Path, text_field: str, id_field: str | None) -> list[str]:
    """Check the columns exist with usable types up front: a wrong column type would make every row bad."""
    schema = pf.schema_arrow
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
    return [text_field] + ([id_field] if id_field is not None else [])


def _read_parquet(
    path: Path, text_field: str, id_field: str | None, skip: int, batch_rows: int
) -> Iterator[Row]:
    pf = pq.ParquetFile(path)
    columns = _parquet_columns(pf, path, text_field, id_field)
    groups, number = [], 0  # skip whole row groups without reading them
    for g in range(pf.metadata.num_row_groups):
        n = pf.metadata.row_group(g).num_rows
        if not groups and number + n <= skip:
            number += n
        else:
            groups.append(g)
    if not groups:
        return
    for batch in pf.iter_batches(batch_size=batch_rows, row_groups=groups, columns=columns):
        texts = batch.column(text_field).to_pylist()
        row_ids = batch.column(id_field).to_pylist() if id_field is not None else [None] * len(texts)
        for text, row_id in zip(texts, row_ids, strict=True):
            number += 1
            if number <= skip:
                continue
            error = "text is null" if text is None else None
            if error is None and id_field is not None:
                error = _check_id(row_id)
            yield (
                Row(number, None, None, error)
                if error
                else Row(number, number if id_field is None else row_id, text)
            )


def read_rows(
    path: Path, fmt: str, text_field: str = "text", id_field: str | None = None, skip: int = 0
) -> Iterator[Row]:
    """Rows after the first `skip` input rows, in file order (the order resume relies on)."""
    if fmt == "jsonl":
        return _read_jsonl(path, text_field, id_field, skip)
    if fmt == "txt":
        if id_field is not None:
            raise CorpusError("plain text input has no fields: ids are line numbers; drop --id-field")
        return _read_txt(path, skip)
    return _read_parquet(path, text_field, id_field, skip, batch_rows=1024)


def count_rows(path: Path, fmt: str) -> int:
    """Input rows (lines, or Parquet rows) for the progress total; a fast byte scan for text files."""
    if fmt == "parquet":
        return pq.ParquetFile(path).metadata.num_rows
    lines, last = 0, b"\n"
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            lines += block.count(b"\n")
            last = block[-1:]
    return lines + (last != b"\n")


# ------------------------------------------------------------------------------------------------ state
def input_identity(path: Path, fmt: str) -> dict[str, Any]:
    """Enough to notice a different or edited input on resume: path, size, mtime, hash of the first MiB."""
    st = path.stat()
    with open(path, "rb") as f:
        head = hashlib.sha256(f.read(1 << 20)).hexdigest()
    return {
        "path": str(path.resolve()),
        "format": fmt,
        "size": st.st_size,
        "mtime_ns": st.st_mtime_ns,
        "head_sha256": head,
    }


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):  # not every platform/filesystem lets you fsync a directory
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def _atomic_file(path: Path) -> Iterator[BinaryIO]:
    """Write to `path.tmp`, fsync, rename over `path`, fsync the directory: whole or not at all."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        yield f
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    with _atomic_file(path) as f:
        f.write(data)


def _describe_mismatch(old: dict[str, Any], new: dict[str, Any], prefix: str = "") -> list[str]:
    diffs = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            diffs += _describe_mismatch(a, b, f"{prefix}{key}.")
        elif a != b:
            diffs.append(f"{prefix}{key}: was {a!r}, now {b!r}")
    return diffs


@dataclass
class Part:
    """A committed part file and what its metadata says it covers."""

    index: int
    path: Path
    rows_start: int
    rows_end: int
    vectors: int
    id_type: str  # "int64", "string", or "" when the part holds no rows
    bad: list[dict[str, Any]] = field(default_factory=list)


def _part_path(directory: Path, index: int) -> Path:
    return directory / f"part-{index:06d}.parquet"


def scan_parts(directory: Path) -> list[Part]:
    """Committed parts in order, after deleting half-written `.tmp` files; refuses gaps or overlaps."""
    for tmp in directory.glob("*.tmp"):
        tmp.unlink()
    parts = []
    for path in sorted(directory.glob("part-*.parquet")):
        meta = pq.read_schema(path).metadata or {}
        try:
            info = json.loads(meta[(META + "part").encode()])
        except (KeyError, ValueError) as exc:
            raise CorpusError(
                f"{path} is not a longformer2vec part; remove {directory} or use --overwrite"
            ) from exc
        parts.append(
            Part(
                int(path.stem.split("-")[1]),
                path,
                info["rows_start"],
                info["rows_end"],
                pq.read_metadata(path).num_rows,
                info["id_type"],
                info["bad"],
            )
        )
    rows = 0
    for expected, part in enumerate(parts):
        if part.index != expected or part.rows_start != rows:
            raise CorpusError(
                f"{directory} has a gap or overlap at {part.path.name}; rerun with --overwrite to start over"
            )
        rows = part.rows_end
    return parts


# ----------------------------------------------------------------------------------------------- tables
def _arrow_id_type(id_type: str) -> pa.DataType:
    return pa.string() if id_type == "string" else pa.int64()


def _table(ids: list[int | str], id_type: str, vectors: np.ndarray, meta: dict[str, str]) -> pa.Table:
    """`id` (int64 or string) and `vector` (fixed_size_list<float32>[dim]) with string metadata."""
    dim = vectors.shape[1]
    flat = pa.array(np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1), type=pa.float32())
    schema = pa.schema(
        [
            pa.field("id", _arrow_id_type(id_type), nullable=False),
            pa.field("vector", pa.list_(pa.float32(), dim), nullable=False),
        ],
        metadata={(META + k).encode(): v.encode() for k, v in meta.items()},
    )
    columns = [pa.array(ids, type=_arrow_id_type(id_type)), pa.FixedSizeListArray.from_arrays(flat, dim)]
    return pa.Table.from_arrays(columns, schema=schema)


def _write_part(path: Path, table: pa.Table) -> None:
    """Atomic commit (see :func:`_atomic_file`)."""
    with _atomic_file(path) as f:
        pq.write_table(table, f)


def _combine(parts: list[Part], output: Path, fmt: str, dim: int, meta: dict[str, str]) -> int:
    """Stream the parts into the final output, one part in memory at a time; returns the row count."""
    id_type = next((p.id_type for p in parts if p.vectors), "int64")
    total = sum(p.vectors for p in parts)
    empty = _table([], id_type, np.zeros((0, dim), np.float32), meta)
    tmp = output.with_name(output.name + ".tmp")
    if fmt == "parquet":
        with pq.ParquetWriter(tmp, empty.schema) as writer:
            for part in parts:
                if part.vectors:
                    writer.write_table(pq.read_table(part.path).cast(empty.schema))
    else:
        # A header for the known shape, then raw float32 rows appended part by part: no memmap, whose
        # dirty pages would count as resident memory growing with the corpus.
        ids_out, ids_tmp = ids_path(output), ids_path(output).with_name(ids_path(output).name + ".tmp")
        id_schema = pa.schema([empty.schema.field("id")], metadata=empty.schema.metadata)
        with open(tmp, "wb") as f, pq.ParquetWriter(ids_tmp, id_schema) as id_writer:
            header = {"descr": "<f4", "fortran_order": False, "shape": (total, dim)}
            np.lib.format.write_array_header_1_0(f, header)
            for part in parts:
                if part.vectors:
                    table = pq.read_table(part.path).cast(empty.schema)
                    id_writer.write_table(table.select(["id"]).cast(id_schema))
                    vec = table.column("vector").combine_chunks().flatten().to_numpy()
                    f.write(vec.astype("<f4", copy=False).tobytes())
            f.flush()
            os.fsync(f.fileno())
        os.replace(ids_tmp, ids_out)
    os.replace(tmp, output)
    _fsync_dir(output.parent)
    return total


# -------------------------------------------------------------------------------------------------- run
@dataclass
class EncodeResult:
    """What one `encode_corpus` call did; `docs`/`tokens`/`seconds` count this process's work only."""

    output: Path
    rows_total: int
    vectors: int
    bad_rows: int
    resumed_rows: int
    docs: int = 0
    tokens: int = 0
    seconds: float = 0.0

    def summary(self) -> str:
        secs = max(self.seconds, 1e-9)
        resumed = f"; resumed after {self.resumed_rows} rows" if self.resumed_rows else ""
        return (
            f"{self.vectors} vectors written to {self.output}; this run embedded {self.docs} documents "
            f"({self.tokens} tokens) in {self.seconds:.2f}s: {self.docs / secs:.2f} docs/s, "
            f"{self.tokens / secs:.0f} tokens/s; {self.bad_rows} bad rows skipped{resumed}"
        )


class _Lock:
    """An exclusive lock on the parts directory, so two runs never write the same parts."""

    def __init__(self, directory: Path) -> None:
        self._file = open(directory / "lock", "a+b")  # noqa: SIM115 - held for the whole run
        try:
            import fcntl
        except ImportError:  # Windows: no advisory locks; one run per output is then the user's job
            return
        try:
            fcntl.flock(self._file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            self._file.close()
            raise CorpusError(f"another encode run is writing {directory}") from exc

    def release(self) -> None:
        self._file.close()


def _prepare(
    directory: Path, output: Path, state: dict[str, Any], overwrite: bool
) -> tuple[_Lock, list[Part]]:
    """Lock the parts directory and return the committed parts to resume from (none for a fresh run)."""
    if not directory.exists():
        if output.exists() and not overwrite:
            raise CorpusError(f"{output} exists (a finished run); pass --overwrite to compute it again")
        output.parent.mkdir(parents=True, exist_ok=True)
        directory.mkdir()
    lock = _Lock(directory)
    try:
        state_file = directory / "state.json"
        if overwrite:
            for child in directory.iterdir():
                if child.name != "lock":
                    shutil.rmtree(child) if child.is_dir() else child.unlink()
        if state_file.exists():
            old = json.loads(state_file.read_text(encoding="utf-8"))
            diffs = _describe_mismatch(old, state)
            if diffs:
                raise CorpusError(
                    f"{directory} holds an unfinished run over different input, model or options "
                    f"({'; '.join(diffs)}); rerun with the original ones, or pass --overwrite to start over"
                )
            return lock, scan_parts(directory)
        if any(directory.glob("part-*.parquet")):
            raise CorpusError(f"{directory} has parts but no state.json; pass --overwrite to start over")
        _atomic_write_bytes(state_file, json.dumps(state, indent=2).encode())
        return lock, []
    except BaseException:
        lock.release()
        raise


def encode_corpus(
    model: Longformer2Vec,
    input_path: str | os.PathLike[str],
    output_path: str | os.PathLike[str],
    *,
    fmt: str | None = None,
    text_field: str = "text",
    id_field: str | None = None,
    part_size: int = 1024,
    chunk_size: int = 64,
    on_bad_row: str = "fail",
    overwrite: bool = False,
    progress: bool = True,
    log: Callable[[str], None] | None = None,
) -> EncodeResult:
    """Embed every row of `input_path` into `output_path` (.parquet or .npy), resuming an unfinished run.

    Rows are embedded `chunk_size` documents per `encode_numpy` call and committed `part_size` input rows
    (good or bad) per part. Part and chunk boundaries depend only on the input and these sizes, so a
    resumed run writes the same vectors as an uninterrupted one with the same sizes.
    """
    if on_bad_row not in BAD_ROW_POLICIES:
        raise CorpusError(f"on_bad_row must be one of {list(BAD_ROW_POLICIES)}, got {on_bad_row!r}")
    if part_size < 1 or chunk_size < 1:
        raise CorpusError(f"part_size and chunk_size must be >= 1, got {part_size}, {chunk_size}")
    log = log or (lambda msg: print(msg, file=sys.stderr))
    source, output = Path(input_path), Path(output_path)
    in_fmt, out_fmt = input_format(source, fmt), output_format(output)
    if not source.is_file():
        raise CorpusError(f"input {source} is not a file")
    if in_fmt == "txt" and id_field is not None:
        raise CorpusError("plain text input has no fields: ids are line numbers; drop --id-field")
    manifest = model.manifest
    options = {
        "normalize": model.normalize,
        "pooling": model.pooling,
        "global_attention": model.global_attention,
        "chunk_overlap": model.chunk_overlap,
    }
    state = {
        "version": STATE_VERSION,
        "input": input_identity(source, in_fmt),
        "text_field": text_field if in_fmt != "txt" else None,
        "id_field": id_field,
        "model": {"model_id": manifest.model_id, "graph_sha256": manifest.graph_sha256},
        "options": options,
    }
    meta = {"model_id": manifest.model_id, "graph_sha256": manifest.graph_sha256}
    meta.update({k: json.dumps(v) for k, v in options.items()})
    directory = parts_dir(output)
    lock, parts = _prepare(directory, output, state, overwrite)
    try:
        return _run(
            model,
            source,
            in_fmt,
            output,
            out_fmt,
            directory,
            parts,
            state,
            meta,
            part_size,
            chunk_size,
            on_bad_row,
            progress,
            log,
        )
    finally:
        lock.release()


def _run(
    model: Longformer2Vec,
    source: Path,
    in_fmt: str,
    output: Path,
    out_fmt: str,
    directory: Path,
    parts: list[Part],
    state: dict[str, Any],
    meta: dict[str, str],
    part_size: int,
    chunk_size: int,
    on_bad_row: str,
    progress: bool,
    log: Callable[[str], None],
) -> EncodeResult:
    exit_after = int(os.environ.get(TEST_EXIT_AFTER_PARTS_ENV, "0") or 0)
    rows_done = parts[-1].rows_end if parts else 0
    id_type = next((p.id_type for p in reversed(parts) if p.id_type), "")
    total_rows = count_rows(source, in_fmt)
    if rows_done:
        log(f"resuming {output}: {len(parts)} parts committed, {rows_done} of {total_rows} input rows done")
    bar = _progress_bar(total_rows, rows_done, progress)
    started = time.perf_counter()
    docs = tokens = committed = 0
    part_ids: list[int | str] = []
    part_vectors: list[np.ndarray] = []
    part_bad: list[dict[str, Any]] = []
    chunk_ids: list[int | str] = []
    chunk_texts: list[str] = []
    part_rows, last_row, shown_row = 0, rows_done, rows_done

    def flush_chunk() -> None:
        nonlocal docs, tokens, shown_row
        if chunk_texts:
            vectors, counts = model.encode_numpy_with_token_counts(chunk_texts)
            part_vectors.append(vectors)
            part_ids.extend(chunk_ids)
            docs += len(chunk_texts)
            tokens += int(counts.sum())
            chunk_ids.clear()
            chunk_texts.clear()
        if bar is not None:
            bar.update(last_row - shown_row)
            elapsed = max(time.perf_counter() - started, 1e-9)
            bar.set_postfix_str(f"{tokens / elapsed:,.0f} tok/s", refresh=False)
        shown_row = last_row

    def commit() -> None:
        nonlocal part_rows, committed
        flush_chunk()
        start = parts[-1].rows_end if parts else 0
        vectors = (
            np.concatenate(part_vectors) if part_vectors else np.zeros((0, model.vector_length), np.float32)
        )
        info = {
            "rows_start": start,
            "rows_end": last_row,
            "id_type": id_type if part_ids else "",
            "bad": part_bad,
        }
        path = _part_path(directory, len(parts))
        _write_part(path, _table(part_ids, id_type, vectors, {**meta, "part": json.dumps(info)}))
        parts.append(Part(len(parts), path, start, last_row, len(part_ids), info["id_type"], list(part_bad)))
        part_ids.clear()
        part_vectors.clear()
        part_bad.clear()
        part_rows = 0
        committed += 1
        if exit_after and committed >= exit_after:
            os._exit(137)  # test hook (see TEST_EXIT_AFTER_PARTS_ENV): die like SIGKILL, no cleanup

    try:
        for row in read_rows(source, in_fmt, state["text_field"] or "text", state["id_field"], rows_done):
            error = row.error
            if error is None:
                row_type = "string" if isinstance(row.id, str) else "int64"
                if id_type and row_type != id_type:
                    error = f"id {row.id!r} is {row_type}, earlier ids are {id_type}"
                else:
                    id_type = row_type
            if error is not None:
                where = f"{source} {'row' if in_fmt == 'parquet' else 'line'} {row.number}"
                if on_bad_row == "fail":
                    raise CorpusError(f"{where}: {error} (pass --on-bad-row skip to skip bad rows)")
                _write_above(bar, f"skipped bad row: {where}: {error}", log)
                part_bad.append({"row": row.number, "reason": error})
            else:
                chunk_ids.append(row.id)  # type: ignore[arg-type]
                chunk_texts.append(row.text)  # type: ignore[arg-type]
            part_rows += 1
            last_row = row.number
            if part_rows == part_size:
                commit()
            elif len(chunk_texts) >= chunk_size:
                flush_chunk()
        if part_rows:
            commit()
    finally:
        if bar is not None:
            bar.close()
    seconds = time.perf_counter() - started
    vectors = _combine(parts, output, out_fmt, model.vector_length, meta)
    bad = [b for p in parts for b in p.bad]
    rejects = rejects_path(output)
    if bad:
        _atomic_write_bytes(rejects, "".join(json.dumps(b) + "\n" for b in bad).encode())
        log(f"{len(bad)} bad rows skipped, listed in {rejects}")
    elif rejects.exists():
        rejects.unlink()  # stale list from an earlier run of this output
    shutil.rmtree(directory)
    return EncodeResult(output, total_rows, vectors, len(bad), rows_done, docs, tokens, seconds)


def _progress_bar(total: int, initial: int, enabled: bool) -> Any:
    """A tqdm bar on stderr counting input rows (docs/s), with tokens/s in the postfix; None if disabled."""
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, unit="doc", file=sys.stderr, dynamic_ncols=True, smoothing=0.1)


def _write_above(bar: Any, message: str, log: Callable[[str], None]) -> None:
    if bar is not None:
        bar.write(message, file=sys.stderr)
    else:
        log(message)
