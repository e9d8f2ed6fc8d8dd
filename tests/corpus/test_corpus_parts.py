"""Parts committed by rows or by time, whichever comes first, with resume still bit-identical; what an
interrupt says."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pq = pytest.importorskip("pyarrow.parquet")

from longformer2vec import Longformer2Vec
from longformer2vec.cli import main
from longformer2vec.corpus import encode_corpus, parts_dir, scan_parts
from tests.corpus.test_corpus import make_texts, run_cli, write_jsonl


def test_time_commits_parts_before_part_size(stub_dir: Path, tmp_path: Path) -> None:
    """part_seconds=0: a part per chunk, though part_size is never reached; each part ends on the chunk
    grid (multiples of chunk_size rows)."""
    inp = write_jsonl(tmp_path / "in.jsonl", [{"text": t} for t in make_texts(23, seed=1)])
    out = tmp_path / "out.parquet"
    ends: list[int] = []

    def stop_after_third(index: int) -> None:
        ends.append(scan_parts(parts_dir(out))[-1].rows_end)
        if index == 2:
            raise KeyboardInterrupt

    model = Longformer2Vec(str(stub_dir))
    with pytest.raises(KeyboardInterrupt):
        encode_corpus(
            model, inp, out, part_size=1024, chunk_size=5, part_seconds=0, progress=False,
            on_part_committed=stop_after_third,
        )  # fmt: skip
    assert ends == [5, 10, 15]
    result = encode_corpus(model, inp, out, part_size=1024, chunk_size=5, part_seconds=0, progress=False)
    assert result.resumed_rows == 15 and result.vectors == 23
    # with the default (60 s) the same input is one part: no time commit on a fast run
    fresh = tmp_path / "fresh.parquet"
    encode_corpus(model, inp, fresh, part_size=1024, chunk_size=5, progress=False)
    assert pq.read_table(fresh).equals(pq.read_table(out))


def test_kill_9_after_time_commits_resumes_bit_identical(tiny_fp32_dir: Path, tmp_path: Path) -> None:
    """A real Longformer graph (vectors depend on the call's batch), parts committed by time: SIGKILL
    once two parts are on disk, rerun, and the output equals an uninterrupted run's bit for bit."""
    texts = make_texts(600, seed=11, max_words=120)
    inp = write_jsonl(tmp_path / "in.jsonl", [{"id": i, "text": t} for i, t in enumerate(texts)])
    args = ["--id-field", "id", "--chunk-size", "7", "--batch-size", "4", "--precision", "fp32"]
    out = tmp_path / "out.parquet"
    cmd = [sys.executable, "-m", "longformer2vec", "encode", "--model", str(tiny_fp32_dir), "--input"]
    cmd += [str(inp), "--output", str(out), "--no-progress", "--part-seconds", "0.05", *args]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not (parts_dir(out) / "part-000001.parquet").exists() and proc.poll() is None:
        assert time.monotonic() < deadline, "no part committed in 120 s"
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL, "the run finished before the kill; make the input longer"
    committed = scan_parts(parts_dir(out))
    assert len(committed) >= 2 and committed[-1].rows_end < 600
    res = run_cli(tiny_fp32_dir, inp, out, "--part-seconds", "0.05", *args)
    assert res.returncode == 0 and "resuming" in res.stderr, res.stderr
    fresh = tmp_path / "fresh.parquet"
    assert run_cli(tiny_fp32_dir, inp, fresh, *args).returncode == 0  # one 60 s part, never killed
    a, b = pq.read_table(out), pq.read_table(fresh)
    assert a.column("id").to_pylist() == list(range(600))
    va = np.stack(a.column("vector").to_numpy(zero_copy_only=False))
    vb = np.stack(b.column("vector").to_numpy(zero_copy_only=False))
    assert np.array_equal(va, vb)


def test_interrupt_says_whether_anything_was_kept(
    stub_dir: Path, tmp_path: Path, monkeypatch, capsys
) -> None:
    inp = write_jsonl(tmp_path / "in.jsonl", [{"text": t} for t in make_texts(30, seed=2)])
    calls = []
    real = Longformer2Vec.encode_numpy_with_token_counts

    def interrupt_on(call: int):
        def encode(self, texts, batch_size=None):
            calls.append(len(texts))
            if len(calls) == call:
                raise KeyboardInterrupt
            return real(self, texts, batch_size)

        return encode

    monkeypatch.setattr(Longformer2Vec, "encode_numpy_with_token_counts", interrupt_on(1))
    argv = ["encode", "--model", str(stub_dir), "--input", str(inp), "--no-progress", "--chunk-size", "5"]
    assert main([*argv, "--output", str(tmp_path / "a.parquet"), "--part-size", "10"]) == 130
    assert capsys.readouterr().err.strip() == "interrupted before any part was committed; nothing was kept"
    assert not parts_dir(tmp_path / "a.parquet").exists()

    calls.clear()
    monkeypatch.setattr(Longformer2Vec, "encode_numpy_with_token_counts", interrupt_on(3))
    assert main([*argv, "--output", str(tmp_path / "b.parquet"), "--part-size", "10"]) == 130
    err = capsys.readouterr().err.strip()
    assert err == f"interrupted; rerun the same command to resume {tmp_path / 'b.parquet'}"


def test_part_seconds_is_checked(stub_dir: Path, tmp_path: Path, capsys) -> None:
    with pytest.raises(SystemExit):
        main(
            [
                "encode",
                "--model",
                str(stub_dir),
                "--input",
                "x.jsonl",
                "--output",
                "y.npy",
                "--part-seconds",
                "-1",
            ]
        )
    assert "--part-seconds: must be a number of seconds >= 0" in capsys.readouterr().err


def test_long_texts_end_a_chunk_early_so_a_slow_model_still_commits(stub_dir: Path, tmp_path: Path) -> None:
    """A chunk also ends once its texts hold 4 characters per token of max_batch_tokens: with a budget
    of 4 x 80 = 320 characters and 100-character texts, every 4th row ends a chunk (and, with
    part_seconds=0, a part), long before chunk_size rows."""
    from longformer2vec.corpus import run

    text = "dog " * 25  # 100 characters
    inp = write_jsonl(tmp_path / "in.jsonl", [{"text": text} for _ in range(10)])
    out = tmp_path / "out.parquet"
    model = Longformer2Vec(str(stub_dir), max_batch_tokens=80)
    assert run.CHARS_PER_CHUNK_CALL * model.max_batch_tokens == 320
    ends: list[int] = []
    encode_corpus(
        model, inp, out, chunk_size=64, part_seconds=0, progress=False,
        on_part_committed=lambda index: ends.append(scan_parts(parts_dir(out))[-1].rows_end),
    )  # fmt: skip
    assert ends == [4, 8, 10]
