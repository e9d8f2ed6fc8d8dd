"""`longformer2vec encode`: formats, bad rows, and resume after a kill (one vector per input row, no more).

Most tests use the context-free stub graph (fast; vectors independent of batching). One test runs the
tiny real Longformer export with texts long enough to be windowed.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pytest

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

from longformer2vec import Longformer2Vec
from longformer2vec.cli import main
from longformer2vec.corpus import encode_corpus, parts_dir
from tests.runtime.test_runtime_cli import BLOCKER

_WORD_TEXT = "I enjoy taking long walks along the beach with my dog quick brown fox lazy "
WORDS = _WORD_TEXT.split()


def make_texts(n: int, seed: int = 0, max_words: int = 40) -> list[str]:
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(WORDS, size=int(rng.integers(0, max_words)))) for _ in range(n)]


def write_jsonl(path: Path, records: list[dict | str]) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records))
    return path


def encode_cli(model: Path, inp: Path, out: Path, *extra: str) -> int:
    return main(
        ["encode", "--model", str(model), "--input", str(inp), "--output", str(out), "--no-progress", *extra]
    )


# `longformer2vec encode ARGS` that ends the process like SIGKILL (os._exit, no cleanup) right after its
# Nth part is committed, through encode_corpus's on_part_committed callback: deterministic, no timer race.
KILL_AFTER_PARTS = """
import os, sys
from longformer2vec import corpus
from longformer2vec.cli import main

parts = int(sys.argv[1])
encode_corpus = corpus.encode_corpus


def die_after_part(index):
    if index + 1 == parts:
        os._exit(137)


def encode_then_die(*args, **kwargs):
    return encode_corpus(*args, on_part_committed=die_after_part, **kwargs)


corpus.encode_corpus = encode_then_die
raise SystemExit(main(sys.argv[2:]))
"""


def run_cli(
    model: Path, inp: Path, out: Path, *extra: str, kill_after_parts: int | None = None
) -> subprocess.CompletedProcess:
    argv = [
        "encode",
        "--model",
        str(model),
        "--input",
        str(inp),
        "--output",
        str(out),
        "--no-progress",
        *extra,
    ]
    if kill_after_parts is None:
        cmd = [sys.executable, "-m", "longformer2vec", *argv]
    else:
        cmd = [sys.executable, "-c", KILL_AFTER_PARTS, str(kill_after_parts), *argv]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)


def read_parquet_output(out: Path) -> tuple[list, np.ndarray]:
    table = pq.read_table(out)
    return table.column("id").to_pylist(), np.stack(table.column("vector").to_numpy(zero_copy_only=False))


def assert_vectors(model_dir: Path, texts: list[str], vectors: np.ndarray, atol: float = 1e-6) -> None:
    expected = Longformer2Vec(str(model_dir)).encode_numpy(texts)
    assert vectors.shape == expected.shape and vectors.dtype == np.float32
    np.testing.assert_allclose(vectors, expected, rtol=1e-5, atol=atol)


# ------------------------------------------------------------------------------------------------ formats
def test_jsonl_to_parquet_string_ids(stub_dir: Path, tmp_path: Path) -> None:
    texts = make_texts(30)
    inp = write_jsonl(
        tmp_path / "in.jsonl", [{"id": f"d{i}", "text": t, "x": 1} for i, t in enumerate(texts)]
    )
    out = tmp_path / "out" / "vectors.parquet"
    assert encode_cli(stub_dir, inp, out, "--id-field", "id", "--part-size", "7", "--chunk-size", "3") == 0
    ids, vectors = read_parquet_output(out)
    assert ids == [f"d{i}" for i in range(30)]
    assert_vectors(stub_dir, texts, vectors)
    schema = pq.read_schema(out)
    assert schema.field("id").type == pa.string() and schema.field("vector").type == pa.list_(pa.float32(), 8)
    assert schema.metadata[b"longformer2vec.model_id"] == b"stub/longformer-tiny"
    assert not parts_dir(out).exists() and not (tmp_path / "out" / "vectors.rejects.jsonl").exists()


def test_jsonl_without_id_field_uses_line_numbers_and_ignores_blank_lines(
    stub_dir: Path, tmp_path: Path
) -> None:
    inp = write_jsonl(tmp_path / "in.jsonl", [{"text": "dog"}, "", {"text": ""}, "   ", {"text": "fox"}])
    out = tmp_path / "out.parquet"
    assert encode_cli(stub_dir, inp, out) == 0
    ids, vectors = read_parquet_output(out)
    assert ids == [1, 3, 5]  # empty string is a document; blank lines are not
    assert pq.read_schema(out).field("id").type == pa.int64()
    assert_vectors(stub_dir, ["dog", "", "fox"], vectors)


def test_txt_to_npy(stub_dir: Path, tmp_path: Path) -> None:
    texts = [*make_texts(12, seed=1), "", "last line without newline"]
    inp = tmp_path / "in.txt"
    inp.write_bytes(("\r\n".join(texts[:-1]) + "\r\n" + texts[-1]).encode())
    out = tmp_path / "out.npy"
    assert encode_cli(stub_dir, inp, out, "--part-size", "5") == 0
    vectors = np.load(out)
    assert_vectors(stub_dir, texts, vectors)
    assert pq.read_table(tmp_path / "out.ids.parquet").column("id").to_pylist() == list(range(1, 15))


def test_utf8_byte_order_mark_is_not_part_of_the_first_document(stub_dir: Path, tmp_path: Path) -> None:
    """Notepad and Excel's "UTF-8" save a BOM; it must not be embedded as text (it tokenizes to 3 tokens)."""
    texts = ["first document", "second"]
    txt = tmp_path / "in.txt"
    txt.write_bytes(b"\xef\xbb\xbf" + "\r\n".join(texts).encode() + b"\r\n")
    assert encode_cli(stub_dir, txt, tmp_path / "txt.npy") == 0
    assert_vectors(stub_dir, texts, np.load(tmp_path / "txt.npy"))

    jsonl = tmp_path / "in.jsonl"  # a BOM alone on a blank first line, then the records
    jsonl.write_bytes(b"\xef\xbb\xbf\r\n" + "".join(json.dumps({"text": t}) + "\r\n" for t in texts).encode())
    assert encode_cli(stub_dir, jsonl, tmp_path / "jsonl.parquet") == 0
    ids, vectors = read_parquet_output(tmp_path / "jsonl.parquet")
    assert ids == [2, 3]
    assert_vectors(stub_dir, texts, vectors)


def test_parquet_in_with_int_ids_resumes_across_row_groups(stub_dir: Path, tmp_path: Path) -> None:
    texts = make_texts(50, seed=2)
    texts[7] = None  # a null text is a bad row
    table = pa.table(
        {"doc_id": pa.array(range(1000, 1050), pa.int32()), "body": pa.array(texts, pa.string())}
    )
    inp = tmp_path / "in.parquet"
    pq.write_table(table, inp, row_group_size=9)
    out = tmp_path / "out.parquet"
    args = ["--text-field", "body", "--id-field", "doc_id", "--part-size", "6", "--on-bad-row", "skip"]
    assert run_cli(stub_dir, inp, out, *args, kill_after_parts=4).returncode == 137
    assert len(list(parts_dir(out).glob("part-*.parquet"))) == 4
    res = run_cli(stub_dir, inp, out, *args)
    assert res.returncode == 0, res.stderr
    assert "resuming" in res.stderr and "24 of 50 input rows done" in res.stderr
    ids, vectors = read_parquet_output(out)
    keep = [i for i in range(50) if i != 7]
    assert ids == [1000 + i for i in keep] and pq.read_schema(out).field("id").type == pa.int64()
    assert_vectors(stub_dir, [texts[i] for i in keep], vectors)
    assert [json.loads(x) for x in (tmp_path / "out.rejects.jsonl").read_text().splitlines()] == [
        {"row": 8, "reason": "text is null, not a string"}
    ]


def test_windowed_texts_on_real_graph_equal_the_api(tiny_fp32_dir: Path, tmp_path: Path) -> None:
    texts = make_texts(20, seed=3, max_words=300)  # up to ~300 words: several 128-token windows
    assert max(len(Longformer2Vec(str(tiny_fp32_dir)).tokenizer.encode(t).ids) for t in texts) > 128
    inp = write_jsonl(tmp_path / "in.jsonl", [{"text": t} for t in texts])
    out = tmp_path / "out.parquet"
    assert encode_cli(tiny_fp32_dir, inp, out, "--part-size", "8", "--batch-size", "3") == 0
    _, vectors = read_parquet_output(out)
    assert_vectors(tiny_fp32_dir, texts, vectors, atol=1e-5)


# ----------------------------------------------------------------------------------------------- bad rows
BAD_LINES = [
    ("{not json", "invalid JSON"),
    ('{"id": "b", "body": "no text field"}', "missing field 'text'"),
    ('{"id": "c", "text": null}', "text is null"),
    ('{"id": "d", "text": 42}', "text is an integer"),
    ('{"id": 2.5, "text": "float id"}', "id is a float, not an integer or string"),
    ('{"id": "e", "text": ["a", "b"]}', "text is a list"),
    ('{"text": "no id"}', "missing id field 'id'"),
    ('["a list line"]', "not a JSON object"),
    ('{"id": 7, "text": "int id after string ids"}', "earlier ids are string"),
]


@pytest.mark.parametrize(("line", "reason"), BAD_LINES)
def test_bad_row_fails_by_default_naming_the_line(
    stub_dir: Path, tmp_path: Path, line: str, reason: str
) -> None:
    inp = write_jsonl(tmp_path / "in.jsonl", [{"id": "a", "text": "dog"}, line, {"id": "z", "text": "fox"}])
    res = run_cli(stub_dir, inp, tmp_path / "out.parquet", "--id-field", "id")
    assert res.returncode == 1
    assert "in.jsonl line 2: " in res.stderr and reason in res.stderr and "Traceback" not in res.stderr
    assert not (tmp_path / "out.parquet").exists()


def test_bad_rows_skipped_are_reported_never_embedded(stub_dir: Path, tmp_path: Path) -> None:
    records = [{"id": "a", "text": "dog"}] + [line for line, _ in BAD_LINES] + [{"id": "z", "text": "fox"}]
    inp = write_jsonl(tmp_path / "in.jsonl", records)
    out = tmp_path / "out.parquet"
    res = run_cli(stub_dir, inp, out, "--id-field", "id", "--on-bad-row", "skip", "--part-size", "3")
    assert res.returncode == 0, res.stderr
    ids, vectors = read_parquet_output(out)
    assert ids == ["a", "z"]
    assert_vectors(stub_dir, ["dog", "fox"], vectors)
    for n, (_, reason) in enumerate(BAD_LINES, start=2):
        assert f"skipped bad row: {inp} line {n}: " in res.stderr and reason in res.stderr
    rejects = [json.loads(x) for x in (tmp_path / "out.rejects.jsonl").read_text().splitlines()]
    assert [r["row"] for r in rejects] == list(range(2, 2 + len(BAD_LINES)))
    assert f"{len(BAD_LINES)} bad rows skipped" in res.stderr


def test_invalid_utf8_is_a_bad_row_and_the_failed_run_leaves_nothing(stub_dir: Path, tmp_path: Path) -> None:
    inp = tmp_path / "in.txt"
    inp.write_bytes(b"dog\n\xff\xfe broken\nfox\n")
    res = run_cli(stub_dir, inp, tmp_path / "out.npy")
    assert res.returncode == 1 and "in.txt line 2: not valid UTF-8" in res.stderr
    assert "Traceback" not in res.stderr and len(res.stderr.splitlines()) == 1
    jsonl = tmp_path / "in.jsonl"
    jsonl.write_bytes(b'{"text": "dog"}\n{"text": "\xff\xfe broken"}\n')
    res = run_cli(stub_dir, jsonl, tmp_path / "out.parquet")
    assert (
        res.returncode == 1
        and "in.jsonl line 2: not valid UTF-8 (invalid start byte at byte 10" in res.stderr
    )
    assert "utf-16" not in res.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.jsonl", "in.txt"]  # no part was committed


# ------------------------------------------------------------------------------------------------- resume
def _corpus_with_bad_rows(path: Path, n: int) -> tuple[list[str], list[str]]:
    """JSONL of n rows where every 10th is bad; returns (good ids, good texts) in order."""
    texts = make_texts(n, seed=4)
    records: list[dict | str] = []
    good_ids, good_texts = [], []
    for i, t in enumerate(texts):
        if i % 10 == 3:
            records.append({"id": f"r{i}", "text": None})
        else:
            records.append({"id": f"r{i}", "text": t})
            good_ids.append(f"r{i}")
            good_texts.append(t)
    write_jsonl(path, records)
    return good_ids, good_texts


def test_killed_run_resumes_with_each_row_once(stub_dir: Path, tmp_path: Path) -> None:
    """The process ends like SIGKILL after 3 committed parts; plus a leftover temp part."""
    inp = tmp_path / "in.jsonl"
    good_ids, good_texts = _corpus_with_bad_rows(inp, 100)
    out = tmp_path / "out.parquet"
    args = ["--id-field", "id", "--on-bad-row", "skip", "--part-size", "8", "--chunk-size", "5"]
    killed = run_cli(stub_dir, inp, out, *args, kill_after_parts=3)
    assert killed.returncode == 137 and not out.exists()
    parts = parts_dir(out)
    assert sorted(p.name for p in parts.glob("part-*")) == [f"part-00000{i}.parquet" for i in range(3)]
    (parts / "part-000003.parquet.tmp").write_bytes(b"half a part")  # killed mid-write

    res = run_cli(stub_dir, inp, out, *args)
    assert res.returncode == 0, res.stderr
    assert "resuming" in res.stderr and "24 of 100 input rows done" in res.stderr
    ids, vectors = read_parquet_output(out)
    assert ids == good_ids and len(set(ids)) == len(ids)
    assert_vectors(stub_dir, good_texts, vectors)
    rejects = [json.loads(x)["row"] for x in (tmp_path / "out.rejects.jsonl").read_text().splitlines()]
    assert rejects == [i + 1 for i in range(100) if i % 10 == 3]  # each bad row once, across both runs
    assert not parts.exists()

    fresh = tmp_path / "fresh.parquet"
    assert run_cli(stub_dir, inp, fresh, *args).returncode == 0
    assert pq.read_table(fresh).equals(pq.read_table(out))  # resumed == uninterrupted, bit for bit


def test_kill_before_combine_then_rerun_combines(stub_dir: Path, tmp_path: Path) -> None:
    texts = make_texts(20, seed=5)
    inp = write_jsonl(tmp_path / "in.jsonl", [{"text": t} for t in texts])
    out = tmp_path / "out.npy"
    killed = run_cli(stub_dir, inp, out, "--part-size", "10", kill_after_parts=2)
    assert killed.returncode == 137 and not out.exists()
    (tmp_path / "out.npy.tmp").write_bytes(b"half-written combine")
    res = run_cli(stub_dir, inp, out, "--part-size", "10")
    assert res.returncode == 0, res.stderr
    assert "this run embedded 0 documents" in res.stderr
    assert_vectors(stub_dir, texts, np.load(out))
    assert not (tmp_path / "out.npy.tmp").exists()


def test_sigkill_mid_run_then_rerun(stub_dir: Path, tmp_path: Path) -> None:
    """A real SIGKILL at whatever point the run has reached; the invariants hold either way."""
    texts = make_texts(3000, seed=6)
    inp = write_jsonl(tmp_path / "in.jsonl", [{"id": i, "text": t} for i, t in enumerate(texts)])
    out = tmp_path / "out.parquet"
    cmd = [sys.executable, "-m", "longformer2vec", "encode", "--model", str(stub_dir), "--input", str(inp)]
    cmd += ["--output", str(out), "--id-field", "id", "--part-size", "20", "--no-progress"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not (parts_dir(out) / "part-000002.parquet").exists() and proc.poll() is None:
        assert time.monotonic() < deadline, "no part committed in 120 s"
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    res = run_cli(stub_dir, inp, out, "--id-field", "id", "--part-size", "20")
    assert res.returncode == 0, res.stderr
    ids, vectors = read_parquet_output(out)
    assert ids == list(range(3000))
    assert_vectors(stub_dir, texts, vectors)


def test_rerun_against_different_input_refuses(stub_dir: Path, tmp_path: Path) -> None:
    inp = write_jsonl(tmp_path / "in.jsonl", [{"text": t} for t in make_texts(30, seed=7)])
    out = tmp_path / "out.parquet"
    assert run_cli(stub_dir, inp, out, "--part-size", "10", kill_after_parts=1).returncode == 137
    write_jsonl(inp, [{"text": t} for t in make_texts(31, seed=8)])
    res = run_cli(stub_dir, inp, out, "--part-size", "10")
    assert res.returncode == 1 and "different input" in res.stderr and "input.size" in res.stderr
    res = run_cli(stub_dir, inp, out, "--part-size", "10", "--text-field", "body")
    assert res.returncode == 1 and "text_field" in res.stderr
    assert run_cli(stub_dir, inp, out, "--part-size", "10", "--overwrite").returncode == 0
    assert pq.read_table(out).num_rows == 31


def test_on_part_committed_is_called_per_part_and_a_raise_keeps_the_committed_parts(
    stub_dir: Path, tmp_path: Path
) -> None:
    texts = make_texts(20, seed=10)
    inp = write_jsonl(tmp_path / "in.jsonl", [{"text": t} for t in texts])
    out = tmp_path / "out.parquet"
    model = Longformer2Vec(str(stub_dir))

    def stop_after_second(index: int) -> None:
        if index == 1:
            raise RuntimeError("stop")

    with pytest.raises(RuntimeError, match="stop"):
        encode_corpus(model, inp, out, part_size=8, progress=False, on_part_committed=stop_after_second)
    assert sorted(p.name for p in parts_dir(out).iterdir()) == [
        "lock",
        "part-000000.parquet",
        "part-000001.parquet",
        "state.json",
    ]
    committed: list[int] = []
    result = encode_corpus(model, inp, out, part_size=8, progress=False, on_part_committed=committed.append)
    assert committed == [2] and result.resumed_rows == 16 and result.docs == 4
    assert_vectors(stub_dir, texts, read_parquet_output(out)[1])


def test_missing_input_and_unknown_suffix_are_one_line_errors(stub_dir: Path, tmp_path: Path) -> None:
    res = run_cli(stub_dir, tmp_path / "nope.jsonl", tmp_path / "out.parquet")
    assert res.returncode == 1 and "nope.jsonl is not a file" in res.stderr and "Traceback" not in res.stderr
    (tmp_path / "in.csv").write_text("a,b\n")
    res = run_cli(stub_dir, tmp_path / "in.csv", tmp_path / "out.parquet")
    assert res.returncode == 1 and "--format" in res.stderr and "Traceback" not in res.stderr
    res = run_cli(stub_dir, tmp_path / "in.csv", tmp_path / "out.csv", "--format", "txt")
    assert res.returncode == 1 and "output must end in .parquet or .npy" in res.stderr


@pytest.mark.parametrize("content", ["", "\n  \n\n"], ids=["0-bytes", "blank-lines"])
def test_empty_input_gives_empty_outputs_and_says_so(
    stub_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str
) -> None:
    inp = tmp_path / "in.jsonl"
    inp.write_text(content)
    assert encode_cli(stub_dir, inp, tmp_path / "out.parquet") == 0
    assert pq.read_table(tmp_path / "out.parquet").num_rows == 0
    assert pq.read_schema(tmp_path / "out.parquet").field("vector").type == pa.list_(pa.float32(), 8)
    assert (
        f"warning: input {inp} has no rows; {tmp_path / 'out.parquet'} holds 0 vectors"
        in capsys.readouterr().err
    )
    assert encode_cli(stub_dir, inp, tmp_path / "out.npy") == 0
    assert np.load(tmp_path / "out.npy").shape == (0, 8)
    assert pq.read_table(tmp_path / "out.ids.parquet").num_rows == 0
    assert "0 vectors written" in capsys.readouterr().err
    assert not parts_dir(tmp_path / "out.npy").exists()


def test_finished_output_is_not_overwritten_silently(stub_dir: Path, tmp_path: Path) -> None:
    inp = write_jsonl(tmp_path / "in.jsonl", [{"text": "dog"}])
    out = tmp_path / "out.parquet"
    assert encode_cli(stub_dir, inp, out) == 0
    res = run_cli(stub_dir, inp, out)
    assert res.returncode == 1 and "pass --overwrite" in res.stderr
    assert run_cli(stub_dir, inp, out, "--overwrite").returncode == 0


def test_progress_bar_on_stderr_shows_docs_and_tokens_per_second(stub_dir: Path, tmp_path: Path) -> None:
    inp = write_jsonl(tmp_path / "in.jsonl", [{"text": t} for t in make_texts(40, seed=9)])
    cmd = [sys.executable, "-m", "longformer2vec", "encode", "--model", str(stub_dir), "--input", str(inp)]
    cmd += ["--output", str(tmp_path / "o.npy"), "--part-size", "10"]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
    assert res.returncode == 0 and res.stdout == ""
    assert "40/40" in res.stderr and "doc/s" in res.stderr and "tok/s" in res.stderr
    assert "40 vectors written" in res.stderr and "tokens/s" in res.stderr


# ------------------------------------------------------------------------ failures leave nothing half-written
@pytest.mark.parametrize(
    ("content", "reason"),
    [(b"", "Parquet file size is 0 bytes"), (b"id,text\n1,not parquet at all\n", "magic bytes")],
    ids=["0-bytes", "not-parquet"],
)
def test_unreadable_parquet_input_is_one_line_error_before_anything_is_written(
    stub_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes, reason: str
) -> None:
    inp = tmp_path / "in.parquet"
    inp.write_bytes(content)
    out = tmp_path / "out" / "vectors.parquet"
    assert encode_cli(stub_dir, inp, out) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: input {inp} is not a readable Parquet file (") and reason in err
    assert len(err.splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.parquet"]  # not even the output's folder


def test_missing_parquet_column_fails_before_anything_is_written(
    stub_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    inp = tmp_path / "in.parquet"
    pq.write_table(pa.table({"body": ["dog"]}), inp)
    assert encode_cli(stub_dir, inp, tmp_path / "out.parquet") == 1
    assert f"error: {inp} has no column 'text' (columns: body)" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.parquet"]


@pytest.mark.parametrize("overwrite", [False, True])
def test_output_that_is_a_directory_is_refused_before_the_model_loads(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], overwrite: bool
) -> None:
    inp = write_jsonl(tmp_path / "in.jsonl", [{"text": "dog"}])
    out = tmp_path / "out.parquet"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    extra = ["--overwrite"] if overwrite else []
    assert encode_cli(tmp_path / "no-such-model", inp, out, *extra) == 1  # the model would fail to load
    assert capsys.readouterr().err == f"error: output {out} is a directory\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.jsonl", "out.parquet"]
    assert [p.name for p in out.iterdir()] == ["keep.txt"]


def _disk_full_after(monkeypatch: pytest.MonkeyPatch, good_parts: int) -> None:
    """Every part write after the first `good_parts` writes half a file, then fails like a full disk."""
    real_write_table = pq.write_table
    calls = []

    def write_table(table: object, where: object, **kwargs: object) -> None:
        calls.append(where)
        if len(calls) <= good_parts:
            return real_write_table(table, where, **kwargs)
        where.write(b"PAR1 half a part")  # type: ignore[attr-defined]
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(pq, "write_table", write_table)


def test_disk_full_on_the_first_part_names_it_and_leaves_nothing(
    stub_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    inp = write_jsonl(tmp_path / "in.jsonl", [{"text": t} for t in make_texts(10, seed=11)])
    out = tmp_path / "out.parquet"
    _disk_full_after(monkeypatch, good_parts=0)
    assert encode_cli(stub_dir, inp, out, "--part-size", "4") == 1
    part = parts_dir(out) / "part-000000.parquet"
    assert capsys.readouterr().err == f"error: cannot write {part}: No space left on device\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.jsonl"]


def test_disk_full_on_a_later_part_keeps_the_committed_ones_for_the_rerun(
    stub_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    texts = make_texts(10, seed=12)
    inp = write_jsonl(tmp_path / "in.jsonl", [{"text": t} for t in texts])
    out = tmp_path / "out.parquet"
    _disk_full_after(monkeypatch, good_parts=2)
    assert encode_cli(stub_dir, inp, out, "--part-size", "4") == 1
    part = parts_dir(out) / "part-000002.parquet"
    assert capsys.readouterr().err == f"error: cannot write {part}: No space left on device\n"
    assert sorted(p.name for p in parts_dir(out).iterdir()) == [
        "lock",
        "part-000000.parquet",
        "part-000001.parquet",
        "state.json",
    ]
    monkeypatch.undo()  # space freed
    assert encode_cli(stub_dir, inp, out, "--part-size", "4") == 0
    assert "8 of 10 input rows done" in capsys.readouterr().err
    assert_vectors(stub_dir, texts, read_parquet_output(out)[1])


def test_disk_full_while_writing_the_output_names_it_and_keeps_the_parts(
    stub_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    texts = make_texts(10, seed=13)
    inp = write_jsonl(tmp_path / "in.jsonl", [{"text": t} for t in texts])
    out = tmp_path / "out.npy"

    def header_then_disk_full(f: BinaryIO, header: object) -> None:
        f.write(b"\x93NUMPY half a header")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(np.lib.format, "write_array_header_1_0", header_then_disk_full)
    assert encode_cli(stub_dir, inp, out, "--part-size", "4") == 1
    assert capsys.readouterr().err == f"error: cannot write {out}: No space left on device\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.jsonl", "out.npy.parts"]  # no .tmp, no ids
    assert len(list(parts_dir(out).glob("part-*.parquet"))) == 3
    monkeypatch.undo()
    assert encode_cli(stub_dir, inp, out, "--part-size", "4") == 0
    assert "this run embedded 0 documents" in capsys.readouterr().err
    assert_vectors(stub_dir, texts, np.load(out))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.jsonl", "out.ids.parquet", "out.npy"]


# ------------------------------------------------------------------------------------------------- extras
def test_encode_without_corpus_extra_names_the_install_command(stub_dir: Path, tmp_path: Path) -> None:
    code = (
        BLOCKER
        + f"""
sys.modules['pyarrow'] = None
import longformer2vec
from longformer2vec.cli import main
raise SystemExit(main(['encode', '--model', {str(stub_dir)!r}, '--input', 'x.jsonl', '--output', 'y.npy']))
"""
    )
    res = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert res.returncode == 2, res.stderr
    assert "pip install -e '.[corpus]'" in res.stderr and "Traceback" not in res.stderr


def test_package_imports_without_pyarrow_tqdm_ray(stub_dir: Path) -> None:
    code = f"""
import sys
for name in ('pyarrow', 'tqdm', 'ray', 'pandas'):
    sys.modules[name] = None
import longformer2vec
from longformer2vec import Longformer2VecBatchEncoder
enc = Longformer2VecBatchEncoder({str(stub_dir)!r})
out = enc({{'id': [1], 'text': ['dog']}})
assert out['vector'].shape == (1, 8)
print('ok')
"""
    res = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert res.returncode == 0 and res.stdout.strip() == "ok", res.stderr
