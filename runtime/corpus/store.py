"""Output side of a corpus run: the parts directory `OUT.parts/` and the final file combined from it.

Every file is written to a `.tmp` name, fsynced and renamed, so it exists whole or not at all; a write
that fails (a full disk) removes its `.tmp` and raises a `CorpusError` naming the file. The directory
holds `state.json` (what is being embedded), `lock`, and `part-NNNNNN.parquet` files whose metadata
records the input rows each consumed.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ..errors import CorpusError
from ..locking import file_lock

OUTPUT_FORMATS = ("parquet", "npy")
STATE_VERSION = 1
META = "longformer2vec."


def output_format(path: Path) -> str:
    fmt = path.suffix.lower().lstrip(".")
    if fmt not in OUTPUT_FORMATS:
        raise CorpusError(f"output must end in .parquet or .npy, got {path}")
    return fmt


def check_output(path: Path) -> None:
    """Refuse an output no run could replace, before anything is computed."""
    if path.is_dir():
        raise CorpusError(f"output {path} is a directory")


def ids_path(output: Path) -> Path:
    """Where `.npy` output keeps its ids (same row order): `out.npy` -> `out.ids.parquet`."""
    return output.with_suffix(".ids.parquet")


def rejects_path(output: Path) -> Path:
    """Where skipped bad rows are listed (JSON lines `{"row": n, "reason": ...}`): `out.rejects.jsonl`."""
    return output.with_suffix(".rejects.jsonl")


def parts_dir(output: Path) -> Path:
    return output.with_name(output.name + ".parts")


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


# ------------------------------------------------------------------------------------------ atomic files
def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):  # not every platform/filesystem lets you fsync a directory
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def atomic_file(path: Path) -> Iterator[BinaryIO]:
    """Write to `path.tmp`, fsync, rename over `path`, fsync the directory: whole or not at all.

    On any failure the `.tmp` is removed; an `OSError` (disk full, permissions) becomes a `CorpusError`
    naming `path`.
    """
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if isinstance(exc, OSError):
            raise CorpusError(f"cannot write {path}: {exc.strerror or exc}") from exc
        raise
    _fsync_dir(path.parent)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    with atomic_file(path) as f:
        f.write(data)


# ------------------------------------------------------------------------------------------------ tables
def _arrow_id_type(id_type: str) -> pa.DataType:
    return pa.string() if id_type == "string" else pa.int64()


def vectors_table(
    ids: list[int | str],
    id_type: str,
    vectors: np.ndarray,
    meta: dict[str, str],
    kept: Sequence[pa.Field] = (),
    kept_values: Sequence[Sequence[object]] = (),
) -> pa.Table:
    """`id` (int64 or string) and `vector` (fixed_size_list<float32>[dim]) with string metadata, then the
    `kept` input fields (`--keep-fields`), `kept_values` holding one tuple per row."""
    dim = vectors.shape[1]
    flat = pa.array(np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1), type=pa.float32())
    schema = pa.schema(
        [
            pa.field("id", _arrow_id_type(id_type), nullable=False),
            pa.field("vector", pa.list_(pa.float32(), dim), nullable=False),
            *kept,
        ],
        metadata={(META + k).encode(): v.encode() for k, v in meta.items()},
    )
    columns = [pa.array(ids, type=_arrow_id_type(id_type)), pa.FixedSizeListArray.from_arrays(flat, dim)]
    by_field = list(zip(*kept_values, strict=True)) if kept_values else [()] * len(kept)
    columns += [pa.array(list(values), type=f.type) for f, values in zip(kept, by_field, strict=True)]
    return pa.Table.from_arrays(columns, schema=schema)


# ------------------------------------------------------------------------------------------------- parts
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


def _read_part(path: Path, directory: Path) -> Part:
    meta = pq.read_schema(path).metadata or {}
    try:
        info = json.loads(meta[(META + "part").encode()])
    except (KeyError, ValueError) as exc:
        raise CorpusError(
            f"{path} is not a longformer2vec part; remove {directory} or use --overwrite"
        ) from exc
    index = int(path.stem.split("-")[1])
    rows = pq.read_metadata(path).num_rows
    return Part(index, path, info["rows_start"], info["rows_end"], rows, info["id_type"], info["bad"])


def scan_parts(directory: Path) -> list[Part]:
    """Committed parts in order, after deleting half-written `.tmp` files; refuses gaps or overlaps."""
    for tmp in directory.glob("*.tmp"):
        tmp.unlink()
    parts = [_read_part(path, directory) for path in sorted(directory.glob("part-*.parquet"))]
    rows = 0
    for expected, part in enumerate(parts):
        if part.index != expected or part.rows_start != rows:
            raise CorpusError(
                f"{directory} has a gap or overlap at {part.path.name}; rerun with --overwrite to start over"
            )
        rows = part.rows_end
    return parts


def _describe_mismatch(old: dict[str, Any], new: dict[str, Any], prefix: str = "") -> list[str]:
    diffs = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            diffs += _describe_mismatch(a, b, f"{prefix}{key}.")
        elif a != b:
            diffs.append(f"{prefix}{key}: was {a!r}, now {b!r}")
    return diffs


def _lock(directory: Path) -> contextlib.ExitStack:
    """An exclusive lock on the parts directory, held until the returned stack closes, so two runs never
    write the same parts."""
    stack = contextlib.ExitStack()
    if not stack.enter_context(file_lock(directory / "lock", blocking=False)):
        stack.close()
        raise CorpusError(f"another encode run is writing {directory}")
    return stack


class PartStore:
    """`OUT.parts/` of one run: open (lock, resume or start), commit parts, combine into `OUT`, close.

    A run that fails before any part exists removes the directory it created (or emptied with
    `overwrite`); committed parts are always kept, so the next run resumes from them.
    """

    def __init__(self, output: Path, out_fmt: str, kept: Sequence[pa.Field] = ()) -> None:
        self.output, self.out_fmt = output, out_fmt
        self.kept = list(kept)  # the output columns of the kept input fields
        self.directory = parts_dir(output)
        self.parts: list[Part] = []
        self._lock: contextlib.ExitStack | None = None
        self._fresh = False  # this run created or emptied the directory

    @property
    def rows_done(self) -> int:
        return self.parts[-1].rows_end if self.parts else 0

    @property
    def id_type(self) -> str:
        """The id type of the committed rows ("" before the first)."""
        return next((p.id_type for p in reversed(self.parts) if p.id_type), "")

    def open(self, state: dict[str, Any], overwrite: bool) -> None:
        """Lock the directory and load the committed parts to resume from (none for a fresh run)."""
        if not self.directory.exists():
            if self.output.exists() and not overwrite:
                raise CorpusError(
                    f"{self.output} exists (a finished run); pass --overwrite to compute it again"
                )
            self.output.parent.mkdir(parents=True, exist_ok=True)
            self.directory.mkdir()
            self._fresh = True
        self._lock = _lock(self.directory)
        try:
            self._load(state, overwrite)
        except BaseException:
            self.close(finished=False)
            raise

    def _load(self, state: dict[str, Any], overwrite: bool) -> None:
        state_file = self.directory / "state.json"
        if overwrite:
            for child in self.directory.iterdir():
                if child.name != "lock":
                    shutil.rmtree(child) if child.is_dir() else child.unlink()
            self._fresh = True
        if state_file.exists():
            old = json.loads(state_file.read_text(encoding="utf-8"))
            diffs = _describe_mismatch(old, state)
            if diffs:
                raise CorpusError(
                    f"{self.directory} holds an unfinished run over different input, model or options "
                    f"({'; '.join(diffs)}); rerun with the original ones, or pass --overwrite to start over"
                )
            self.parts = scan_parts(self.directory)
            return
        if any(self.directory.glob("part-*.parquet")):
            raise CorpusError(f"{self.directory} has parts but no state.json; pass --overwrite to start over")
        atomic_write_bytes(state_file, json.dumps(state, indent=2).encode())

    def commit(
        self,
        ids: list[int | str],
        id_type: str,
        vectors: np.ndarray,
        rows_end: int,
        bad: list[dict[str, Any]],
        meta: dict[str, str],
        kept_values: Sequence[Sequence[object]] = (),
    ) -> Part:
        """Write the next part, covering input rows `rows_done`..`rows_end`, atomically; `kept_values`
        has one tuple of kept field values per vector."""
        info = {
            "rows_start": self.rows_done,
            "rows_end": rows_end,
            "id_type": id_type if ids else "",
            "bad": bad,
        }
        path = _part_path(self.directory, len(self.parts))
        table = vectors_table(
            ids, id_type, vectors, {**meta, "part": json.dumps(info)}, self.kept, kept_values
        )
        with atomic_file(path) as f:
            pq.write_table(table, f)
        part = Part(len(self.parts), path, self.rows_done, rows_end, len(ids), info["id_type"], list(bad))
        self.parts.append(part)
        return part

    def combine(self, dim: int, meta: dict[str, str]) -> int:
        """Stream the parts into `OUT`, one part in memory at a time; returns the row count."""
        id_type = next((p.id_type for p in self.parts if p.vectors), "int64")
        schema = vectors_table([], id_type, np.zeros((0, dim), np.float32), meta, self.kept).schema
        if self.out_fmt == "parquet":
            with atomic_file(self.output) as f, pq.ParquetWriter(f, schema) as writer:
                for table in self._read_parts():
                    writer.write_table(table.cast(schema))
        else:
            self._combine_npy(schema, dim)
        return sum(p.vectors for p in self.parts)

    def _read_parts(self, columns: list[str] | None = None) -> Iterator[pa.Table]:
        """The parts that hold vectors, in order; a failed read names the part, not the file being written."""
        for part in self.parts:
            if not part.vectors:
                continue
            try:
                table = pq.read_table(part.path, columns=columns)
            except (pa.ArrowException, OSError) as exc:
                raise CorpusError(f"cannot read {part.path}: {exc}") from exc
            yield table

    def _combine_npy(self, schema: pa.Schema, dim: int) -> None:
        """The ids to `OUT.ids.parquet`, then `OUT`: a header for the known shape and raw float32 rows
        appended part by part (no memmap, whose dirty pages would count as resident memory growing with
        the corpus). If `OUT` cannot be written, the ids file goes too, so no half output remains."""
        ids = ids_path(self.output)
        id_schema = pa.schema([schema.field("id")], metadata=schema.metadata)
        with atomic_file(ids) as f, pq.ParquetWriter(f, id_schema) as writer:
            for table in self._read_parts(["id"]):
                writer.write_table(table.cast(id_schema))
        try:
            with atomic_file(self.output) as f:
                shape = (sum(p.vectors for p in self.parts), dim)
                np.lib.format.write_array_header_1_0(
                    f, {"descr": "<f4", "fortran_order": False, "shape": shape}
                )
                for table in self._read_parts(["vector"]):
                    vectors = table.column("vector").combine_chunks().flatten().to_numpy()
                    f.write(vectors.astype("<f4", copy=False).tobytes())
        except BaseException:
            with contextlib.suppress(OSError):
                ids.unlink()
            raise

    def write_rejects(self) -> tuple[int, Path]:
        """List the skipped rows of every part in `OUT.rejects.jsonl` (a stale list is removed)."""
        bad = [b for p in self.parts for b in p.bad]
        rejects = rejects_path(self.output)
        if bad:
            atomic_write_bytes(rejects, "".join(json.dumps(b) + "\n" for b in bad).encode())
        elif rejects.exists():
            rejects.unlink()  # from an earlier run of this output
        return len(bad), rejects

    def close(self, *, finished: bool) -> None:
        """Unlock. Once `OUT` is finished the parts go; after a failure only a directory this run made
        (or emptied) and committed nothing to, so that no resumable work is ever lost."""
        try:
            if finished or (self._fresh and not self.parts):
                shutil.rmtree(
                    self.directory, ignore_errors=not finished
                )  # under the lock: no run starts on it
        finally:
            if self._lock is not None:
                self._lock.close()
                self._lock = None
