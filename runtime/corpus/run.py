"""The run loop of `longformer2vec encode`: rows after the committed ones are embedded in chunks and
committed a part at a time, then the parts are combined into the output.

A chunk (the texts of one encode call) ends at every `chunk_size`-th and every `part_size`-th input
row (by row number), and as soon as its texts hold :data:`CHARS_PER_CHUNK_CALL` characters per token
of the model's `max_batch_tokens` (about one model call: on a slow model a chunk then takes seconds,
not minutes). A part is committed at every `part_size`-th row, or earlier, at the end of a chunk, once
`part_seconds` have passed since the last commit, so a kill loses little work. Where a chunk ends
depends on the rows since the previous end only, and a commit falls on a chunk's end, so which texts
share an encode call depends on the input and the sizes alone, never on timing: a resumed run writes
the same vectors as an uninterrupted one with the same sizes, bit for bit.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from ..errors import CorpusError
from ..hub import public_model_id
from .readers import Row, check_input, count_rows, input_format, read_rows
from .store import STATE_VERSION, PartStore, check_output, input_identity, output_format

if TYPE_CHECKING:
    from ..encoder import Longformer2Vec

BAD_ROW_POLICIES = ("fail", "skip")
# A chunk ends once its texts hold this many characters per token of the model's max_batch_tokens:
# about four characters make a token, so a chunk is about one model call's worth of tokens (a window of
# a long document is a call of its own on the CPU anyway), and a slow model still ends chunks often.
CHARS_PER_CHUNK_CALL = 4


@dataclass(frozen=True)
class EncodeOptions:
    """How to read the input and cut the work; checked on construction."""

    fmt: str | None = None
    text_field: str = "text"
    id_field: str | None = None
    part_size: int = 1024
    chunk_size: int = 64
    on_bad_row: str = "fail"
    overwrite: bool = False
    progress: bool = True
    part_seconds: float = 60.0
    keep_fields: tuple[str, ...] = ()  # input fields copied into the output beside `id` and `vector`

    def __post_init__(self) -> None:
        if self.on_bad_row not in BAD_ROW_POLICIES:
            raise CorpusError(f"on_bad_row must be one of {list(BAD_ROW_POLICIES)}, got {self.on_bad_row!r}")
        if self.part_size < 1 or self.chunk_size < 1:
            raise CorpusError(
                f"part_size and chunk_size must be >= 1, got {self.part_size}, {self.chunk_size}"
            )
        if isinstance(self.part_seconds, bool) or not self.part_seconds >= 0:
            raise CorpusError(f"part_seconds must be a number >= 0, got {self.part_seconds!r}")


@dataclass(frozen=True)
class CorpusJob:
    """The checked input and output of a run."""

    source: Path
    in_fmt: str
    output: Path
    out_fmt: str
    text_field: str | None  # None for plain text, which has no fields
    id_field: str | None
    kept: tuple[pa.Field, ...] = ()  # the output columns of `--keep-fields`

    def where(self, row: Row) -> str:
        """How messages name an input row: `FILE line N` (text formats) or `FILE row N` (Parquet)."""
        return f"{self.source} {'row' if self.in_fmt == 'parquet' else 'line'} {row.number}"


def check_job(
    input_path: str | os.PathLike[str], output_path: str | os.PathLike[str], options: EncodeOptions
) -> CorpusJob:
    """Every check that needs no model: the CLI runs it before the slow model load, and nothing is written
    until it passes (a missing, empty or corrupt Parquet input; an output that is a directory)."""
    source, output = Path(input_path), Path(output_path)
    in_fmt, out_fmt = input_format(source, options.fmt), output_format(output)
    kept = check_input(source, in_fmt, options.text_field, options.id_field, options.keep_fields)
    check_output(output)
    if kept and out_fmt != "parquet":
        raise CorpusError(f"--keep-fields needs a .parquet output: {output} (.npy) holds the vectors only")
    text_field = options.text_field if in_fmt != "txt" else None
    return CorpusJob(source, in_fmt, output, out_fmt, text_field, options.id_field, tuple(kept))


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
    part_seconds: float = 60.0,
    keep_fields: Sequence[str] = (),
    log: Callable[[str], None] | None = None,
    on_part_committed: Callable[[int], None] | None = None,
) -> EncodeResult:
    """Embed every row of `input_path` into `output_path` (.parquet or .npy), resuming an unfinished run.

    Rows are embedded at most `chunk_size` documents per encode call and committed `part_size` input
    rows (good or bad) per part, or after `part_seconds` at the end of a chunk, whichever comes first.
    `keep_fields` are input fields copied into the output beside `id` and `vector` (Parquet output only).
    `on_part_committed(index)` is called once each part is durably on disk.
    """
    options = EncodeOptions(
        fmt=fmt,
        text_field=text_field,
        id_field=id_field,
        part_size=part_size,
        chunk_size=chunk_size,
        on_bad_row=on_bad_row,
        overwrite=overwrite,
        progress=progress,
        part_seconds=part_seconds,
        keep_fields=tuple(keep_fields),
    )
    job = check_job(input_path, output_path, options)
    store = PartStore(job.output, job.out_fmt, job.kept)
    store.open(_state(model, job), options.overwrite)
    finished = False
    try:
        run = _CorpusRun(model, job, options, store, log or _log_to_stderr, on_part_committed)
        result = run.run()
        finished = True
    finally:
        store.close(finished=finished)
    return result


def _model_options(model: Longformer2Vec) -> dict[str, Any]:
    return {
        "normalize": model.normalize,
        "pooling": model.pooling,
        "global_attention": model.global_attention,
        "chunk_overlap": model.chunk_overlap,
    }


def _model_identity(model: Longformer2Vec) -> dict[str, Any]:
    """Which model and graph wrote the vectors: recorded in the resume state and the output's metadata."""
    return {"model_id": public_model_id(model.manifest), "graph_sha256": model.graph.sha256}


def _state(model: Longformer2Vec, job: CorpusJob) -> dict[str, Any]:
    """What a resumed run must share with the run that wrote the parts (compared key by key)."""
    return {
        "version": STATE_VERSION,
        "input": input_identity(job.source, job.in_fmt),
        "text_field": job.text_field,
        "id_field": job.id_field,
        "keep_fields": [f.name for f in job.kept],
        "model": _model_identity(model),
        "options": _model_options(model),
    }


def _output_meta(model: Longformer2Vec) -> dict[str, str]:
    meta: dict[str, Any] = _model_identity(model)
    meta.update({k: json.dumps(v) for k, v in _model_options(model).items()})
    return meta


class _CorpusRun:
    """One pass over the input after the committed rows: rows go into a chunk (embedded together) and
    the chunks into the current part (committed together, with the bad rows it consumed)."""

    def __init__(
        self,
        model: Longformer2Vec,
        job: CorpusJob,
        options: EncodeOptions,
        store: PartStore,
        log: Callable[[str], None],
        on_part_committed: Callable[[int], None] | None,
    ) -> None:
        self.model, self.job, self.options, self.store = model, job, options, store
        self.log, self.on_part_committed = log, on_part_committed
        self.meta = _output_meta(model)
        self.id_type = store.id_type
        self.rows_resumed = store.rows_done
        self.last_row = self.shown_row = self.rows_resumed  # last row consumed / shown by the bar
        self.docs = self.tokens = 0
        self.started = self.committed_at = time.perf_counter()
        self.bar: Any = None
        self.part_rows = 0
        self.chunk_rows = self.chunk_chars = 0
        self.chunk_char_budget = CHARS_PER_CHUNK_CALL * model.max_batch_tokens
        self.part_ids: list[int | str] = []
        self.part_vectors: list[np.ndarray] = []
        self.part_kept: list[tuple[object, ...]] = []
        self.part_bad: list[dict[str, Any]] = []
        self.chunk_ids: list[int | str] = []
        self.chunk_texts: list[str] = []
        self.chunk_kept: list[tuple[object, ...]] = []

    def run(self) -> EncodeResult:
        job = self.job
        total_rows = count_rows(job.source, job.in_fmt)
        if self.rows_resumed:
            self.log(
                f"resuming {job.output}: {len(self.store.parts)} parts committed, "
                f"{self.rows_resumed} of {total_rows} input rows done"
            )
        self.bar = _progress_bar(total_rows, self.rows_resumed, self.options.progress)
        self.started = self.committed_at = time.perf_counter()
        try:
            keep = [f.name for f in job.kept]
            for row in read_rows(
                job.source, job.in_fmt, job.text_field or "text", job.id_field, self.rows_resumed, keep
            ):
                self._take(row)
            if self.part_rows:
                self._commit()
        finally:
            if self.bar is not None:
                self.bar.close()
        seconds = time.perf_counter() - self.started
        vectors = self.store.combine(self.model.vector_length, self.meta)
        bad, rejects = self.store.write_rejects()
        if bad:
            self.log(f"{bad} bad rows skipped, listed in {rejects}")
        if not self.store.parts:
            self.log(f"warning: input {job.source} has no rows; {job.output} holds 0 vectors")
        return EncodeResult(
            job.output, total_rows, vectors, bad, self.rows_resumed, self.docs, self.tokens, seconds
        )

    def _take(self, row: Row) -> None:
        """Route one input row to the chunk or the bad-row list, and commit or embed at the grid's lines."""
        part_size, chunk_size = self.options.part_size, self.options.chunk_size
        # rows the reader skipped (blank JSONL lines) may jump over a line of the grid
        if self.part_rows and _block(row.number, part_size) != _block(self.last_row, part_size):
            self._commit()
        elif self.chunk_rows and _block(row.number, chunk_size) != _block(self.last_row, chunk_size):
            self._end_chunk()
        error = row.error or self._id_type_error(row)
        if error is not None:
            self._bad_row(row, error)
        else:
            self.chunk_ids.append(row.id)  # type: ignore[arg-type]
            self.chunk_texts.append(row.text)  # type: ignore[arg-type]
            self.chunk_kept.append(row.kept)
            self.chunk_chars += len(row.text)  # type: ignore[arg-type]
        self.part_rows += 1
        self.chunk_rows += 1
        self.last_row = row.number
        if row.number % part_size == 0:
            self._commit()
        elif row.number % chunk_size == 0 or self.chunk_chars >= self.chunk_char_budget:
            self._end_chunk()

    def _end_chunk(self) -> None:
        """Embed the chunk; commit the part too once `part_seconds` have passed since the last commit."""
        self._flush_chunk()
        if time.perf_counter() - self.committed_at >= self.options.part_seconds:
            self._commit()

    def _id_type_error(self, row: Row) -> str | None:
        """Output ids have one type: the first good row's fixes it for the whole run (resumes included)."""
        row_type = "string" if isinstance(row.id, str) else "int64"
        if self.id_type and row_type != self.id_type:
            return f"id {row.id!r} is {row_type}, earlier ids are {self.id_type}"
        self.id_type = row_type
        return None

    def _bad_row(self, row: Row, error: str) -> None:
        where = self.job.where(row)
        if self.options.on_bad_row == "fail":
            raise CorpusError(f"{where}: {error} (pass --on-bad-row skip to skip bad rows)")
        message = f"skipped bad row: {where}: {error}"
        if self.bar is not None:
            self.bar.write(message, file=sys.stderr)
        else:
            self.log(message)
        self.part_bad.append({"row": row.number, "reason": error})

    def _flush_chunk(self) -> None:
        """Embed the pending chunk into the current part and move the progress bar to the last row."""
        if self.chunk_texts:
            vectors, counts = self.model.encode_numpy_with_token_counts(self.chunk_texts)
            self.part_vectors.append(vectors)
            self.part_ids.extend(self.chunk_ids)
            self.part_kept.extend(self.chunk_kept)
            self.docs += len(self.chunk_texts)
            self.tokens += int(counts.sum())
            self.chunk_ids.clear()
            self.chunk_texts.clear()
            self.chunk_kept.clear()
        self.chunk_rows = self.chunk_chars = 0
        if self.bar is not None:
            self.bar.update(self.last_row - self.shown_row)
            elapsed = max(time.perf_counter() - self.started, 1e-9)
            self.bar.set_postfix_str(f"{self.tokens / elapsed:,.0f} tok/s", refresh=False)
        self.shown_row = self.last_row

    def _commit(self) -> None:
        self._flush_chunk()
        dim = self.model.vector_length
        vectors = np.concatenate(self.part_vectors) if self.part_vectors else np.zeros((0, dim), np.float32)
        part = self.store.commit(
            self.part_ids, self.id_type, vectors, self.last_row, self.part_bad, self.meta, self.part_kept
        )
        self.part_ids.clear()
        self.part_kept.clear()
        self.part_vectors.clear()
        self.part_bad.clear()
        self.part_rows = 0
        self.committed_at = time.perf_counter()
        if self.on_part_committed is not None:
            self.on_part_committed(part.index)


def _block(number: int, size: int) -> int:
    """Which block of `size` rows the 1-based row `number` falls in."""
    return (number - 1) // size


def _log_to_stderr(message: str) -> None:
    print(message, file=sys.stderr)


def _progress_bar(total: int, initial: int, enabled: bool) -> Any:
    """A tqdm bar on stderr counting input rows (docs/s), with tokens/s in the postfix; None if disabled."""
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, unit="doc", file=sys.stderr, dynamic_ncols=True, smoothing=0.1)
