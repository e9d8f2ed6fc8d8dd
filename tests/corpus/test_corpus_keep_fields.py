"""`longformer2vec encode --keep-fields`: input fields copied beside `id` and `vector`, so the Parquet
loads as it is into a vector store with the text to show (LanceDB, end to end, as docs/corpus.md shows it)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

from longformer2vec import Longformer2Vec
from tests.corpus.test_corpus import encode_cli, make_texts, read_parquet_output, run_cli, write_jsonl


def test_jsonl_fields_are_kept_as_strings_beside_the_same_vectors(stub_dir: Path, tmp_path: Path) -> None:
    texts = make_texts(25, seed=11)
    records: list[dict] = [
        {"id": f"d{i}", "text": t, "title": f"title {i}", "meta": {"page": i}} for i, t in enumerate(texts)
    ]
    del records[3]["title"]  # a missing field is kept as null
    records[4]["title"] = 44  # a non-string value is kept as its JSON text
    inp = write_jsonl(tmp_path / "in.jsonl", records)
    plain, kept = tmp_path / "plain.parquet", tmp_path / "kept.parquet"
    assert encode_cli(stub_dir, inp, plain, "--id-field", "id", "--part-size", "7") == 0
    args = ("--id-field", "id", "--part-size", "7", "--keep-fields", "text,title,meta")
    assert encode_cli(stub_dir, inp, kept, *args) == 0
    table = pq.read_table(kept)
    assert table.column_names == ["id", "vector", "text", "title", "meta"]
    assert [table.schema.field(n).type for n in ("text", "title", "meta")] == [pa.string()] * 3
    assert table.column("text").to_pylist() == texts
    titles = table.column("title").to_pylist()
    assert titles[3] is None and titles[4] == "44" and titles[5] == "title 5"
    assert json.loads(table.column("meta").to_pylist()[7]) == {"page": 7}
    ids, vectors = read_parquet_output(kept)
    plain_ids, plain_vectors = read_parquet_output(plain)
    assert ids == plain_ids and np.array_equal(vectors, plain_vectors)


def test_parquet_columns_keep_their_types_and_a_killed_run_resumes_identically(
    stub_dir: Path, tmp_path: Path
) -> None:
    texts = make_texts(40, seed=12)
    inp = tmp_path / "in.parquet"
    source = pa.table(
        {"text": texts, "year": pa.array(range(1990, 2030), pa.int32()), "tags": [["a", "b"]] * 40}
    )
    pq.write_table(source, inp, row_group_size=9)
    args = ["--part-size", "10", "--keep-fields", "year,tags,text"]
    out = tmp_path / "out.parquet"
    killed = run_cli(stub_dir, inp, out, *args, kill_after_parts=2)
    assert killed.returncode == 137 and not out.exists()
    changed = run_cli(stub_dir, inp, out, "--part-size", "10", "--keep-fields", "year")
    assert changed.returncode == 1 and "keep_fields" in changed.stderr  # the rerun must keep the same
    resumed = run_cli(stub_dir, inp, out, *args)
    assert resumed.returncode == 0, resumed.stderr
    fresh = tmp_path / "fresh.parquet"
    assert run_cli(stub_dir, inp, fresh, *args).returncode == 0
    table = pq.read_table(out)
    assert table.equals(pq.read_table(fresh))  # resumed == uninterrupted, bit for bit
    assert table.schema.field("year").type == pa.int32()
    assert table.schema.field("tags").type == pa.list_(pa.string())
    assert table.column("year").to_pylist() == list(range(1990, 2030))
    assert table.column("text").to_pylist() == texts


@pytest.mark.parametrize(
    ("suffix", "output", "keep", "message"),
    [
        (".jsonl", "out.parquet", "id", "cannot keep 'id'"),
        (".jsonl", "out.parquet", "title,title", "names a field twice"),
        (".jsonl", "out.npy", "title", "needs a .parquet output"),
        (".txt", "out.parquet", "title", "can only keep 'text'"),
        (".parquet", "out.parquet", "nope", "has no column 'nope' to keep"),
    ],
)
def test_keep_fields_mistakes_are_one_line_before_anything_is_written(
    stub_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    suffix: str,
    output: str,
    keep: str,
    message: str,
) -> None:
    inp = tmp_path / f"in{suffix}"
    if suffix == ".parquet":
        pq.write_table(pa.table({"text": ["a", "b"]}), inp)
    elif suffix == ".txt":
        inp.write_text("a\nb\n")
    else:
        write_jsonl(inp, [{"text": "a", "title": "t"}])
    code = encode_cli(stub_dir, inp, tmp_path / output, "--keep-fields", keep)
    err = capsys.readouterr().err
    assert code != 0 and message in err and err.count("\n") == 1, err
    assert not (tmp_path / output).exists()


def test_plain_text_keeps_its_line_as_text(stub_dir: Path, tmp_path: Path) -> None:
    inp = tmp_path / "in.txt"
    inp.write_text("first line\n\nthird line\n")
    out = tmp_path / "out.parquet"
    assert encode_cli(stub_dir, inp, out, "--keep-fields", "text") == 0
    assert pq.read_table(out).column("text").to_pylist() == ["first line", "", "third line"]


def test_lancedb_loads_the_output_as_it_is_and_finds_a_document(tiny_fp32_dir: Path, tmp_path: Path) -> None:
    """The corpus page's vector-store example: encode with the text kept, load into LanceDB, search."""
    lancedb = pytest.importorskip("lancedb")
    docs = [
        {"id": "rivers", "title": "Rivers", "text": "Rivers carry water from the mountains to the sea."},
        {"id": "markets", "title": "Markets", "text": "Stock markets fell sharply after the announcement."},
        {"id": "cooking", "title": "Cooking", "text": "Slowly simmer the onions in butter until golden."},
    ]
    inp = write_jsonl(tmp_path / "docs.jsonl", docs)
    out = tmp_path / "vectors.parquet"
    assert encode_cli(tiny_fp32_dir, inp, out, "--id-field", "id", "--keep-fields", "title,text") == 0

    db = lancedb.connect(tmp_path / "lancedb")
    table = db.create_table("docs", pq.read_table(out))
    query = Longformer2Vec(tiny_fp32_dir).encode(docs[1]["text"])
    hits = table.search(query).limit(1).to_list()
    assert hits[0]["id"] == "markets" and hits[0]["title"] == "Markets" and hits[0]["_distance"] < 1e-6
    assert table.count_rows() == 3
