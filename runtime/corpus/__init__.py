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
* Nothing half-written is left by a failure: the input and output paths are checked before anything is
  written, a failed write removes its temp file, and a run that fails before committing a part removes
  the parts directory it made. Committed parts are never removed by a failure: they are what a rerun
  resumes from.

Input row numbers are 1-based: the physical line for JSONL and text, the row for Parquet. They name bad
rows in messages and are the ids when no `id_field` is given.
"""

from __future__ import annotations

from ..errors import CorpusError
from .readers import INPUT_FORMATS, Row, count_rows, input_format, read_rows, text_error
from .run import BAD_ROW_POLICIES, CorpusJob, EncodeOptions, EncodeResult, check_job, encode_corpus
from .store import (
    OUTPUT_FORMATS,
    Part,
    PartStore,
    ids_path,
    output_format,
    parts_dir,
    rejects_path,
    scan_parts,
)

__all__ = [
    "BAD_ROW_POLICIES",
    "INPUT_FORMATS",
    "OUTPUT_FORMATS",
    "CorpusError",
    "CorpusJob",
    "EncodeOptions",
    "EncodeResult",
    "Part",
    "PartStore",
    "Row",
    "check_job",
    "count_rows",
    "encode_corpus",
    "ids_path",
    "input_format",
    "output_format",
    "parts_dir",
    "read_rows",
    "rejects_path",
    "scan_parts",
    "text_error",
]
