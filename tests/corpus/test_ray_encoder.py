"""`Longformer2VecBatchEncoder`: plain batches and thread defaults without Ray, then the README's Ray script."""

from __future__ import annotations

import os
import re
import secrets
import signal
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from longformer2vec import Longformer2Vec, Longformer2VecBatchEncoder
from tests.corpus.test_corpus import make_texts


def test_dict_pandas_and_arrow_batches(stub_dir: Path) -> None:
    texts = make_texts(9, seed=10)
    expected = Longformer2Vec(str(stub_dir)).encode_numpy(texts)
    encoder = Longformer2VecBatchEncoder(str(stub_dir), text_column="body", vector_column="emb", batch_size=2)
    batches: list[object] = [{"id": np.arange(9), "body": np.array(texts, dtype=object)}]
    pd = pytest.importorskip("pandas")
    pa = pytest.importorskip("pyarrow")
    batches += [pd.DataFrame({"id": range(9), "body": texts}), pa.table({"id": range(9), "body": texts})]
    for batch in batches:
        out = encoder(batch)
        assert set(out) == {"id", "body", "emb"} and list(out["id"]) == list(range(9))
        np.testing.assert_allclose(out["emb"], expected, rtol=1e-5, atol=1e-6)


def test_non_text_row_raises_naming_its_id(stub_dir: Path) -> None:
    encoder = Longformer2VecBatchEncoder(str(stub_dir))
    with pytest.raises(TypeError, match=r"row id='b': text is null, not a string"):
        encoder({"id": np.array(["a", "b"], dtype=object), "text": np.array(["dog", None], dtype=object)})
    with pytest.raises(
        TypeError, match=r"row id=8: text is a float, not a string"
    ):  # an integer id column, a NaN text
        encoder({"id": np.array([7, 8]), "text": np.array(["dog", np.nan], dtype=object)})


def test_empty_batches_give_an_empty_vector_column(stub_dir: Path) -> None:
    encoder = Longformer2VecBatchEncoder(str(stub_dir))
    batches: list[object] = [{"id": np.array([], dtype=np.int64), "text": np.array([], dtype=object)}]
    pd = pytest.importorskip("pandas")
    pa = pytest.importorskip("pyarrow")
    batches += [pd.DataFrame({"id": pd.Series([], dtype="int64"), "text": pd.Series([], dtype=object)})]
    batches += [pa.table({"id": pa.array([], pa.int64()), "text": pa.array([], pa.string())})]
    for batch in batches:
        out = encoder(batch)
        assert out["vector"].shape == (0, encoder.model.vector_length) and out["vector"].dtype == np.float32


class _FakeRuntimeContext:
    def __init__(self, actor_id: str | None, cpus: float | None) -> None:
        self.actor_id, self.cpus = actor_id, cpus

    def get_actor_id(self) -> str | None:
        return self.actor_id

    def get_assigned_resources(self) -> dict[str, float]:
        return {} if self.cpus is None else {"CPU": self.cpus}


def _fake_ray(actor_id: str | None, cpus: float | None) -> types.ModuleType:
    """Stands in for an imported `ray` as a Ray worker process sees it."""
    fake = types.ModuleType("ray")
    fake.is_initialized = lambda: True  # type: ignore[attr-defined]
    fake.get_runtime_context = lambda: _FakeRuntimeContext(actor_id, cpus)  # type: ignore[attr-defined]
    return fake


def _ort_threads(encoder: Longformer2VecBatchEncoder) -> int:
    return encoder.model._session.session.get_session_options().intra_op_num_threads


@pytest.mark.parametrize(
    ("actor_id", "cpus", "kwargs", "expected"),
    [
        ("actor-1", 2.0, {}, 2),  # the actor's reserved CPUs
        ("actor-1", 0.5, {}, 1),  # a fractional CPU still gets one thread
        ("actor-1", 2.0, {"intra_op_num_threads": 3}, 3),  # an explicit count wins
        ("actor-1", None, {}, None),  # no CPU reserved: ONNX Runtime's default
        (None, 2.0, {}, None),  # the driver (or a task), not an actor
    ],
)
def test_threads_follow_the_ray_actors_cpus(
    stub_dir: Path, monkeypatch, actor_id: str | None, cpus: float | None, kwargs: dict, expected: int | None
) -> None:
    monkeypatch.setitem(sys.modules, "ray", _fake_ray(actor_id, cpus))
    encoder = Longformer2VecBatchEncoder(str(stub_dir), **kwargs)
    threads = encoder.intra_op_num_threads
    print(f"actor={actor_id} cpus={cpus} {kwargs}: {threads} threads, ORT {_ort_threads(encoder)}")
    assert threads == expected
    assert _ort_threads(encoder) == (0 if expected is None else expected)  # 0: ORT picks its own


def test_threads_left_alone_with_session_options_or_without_ray(stub_dir: Path, monkeypatch) -> None:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    monkeypatch.setitem(sys.modules, "ray", _fake_ray("actor-1", 4.0))
    encoder = Longformer2VecBatchEncoder(str(stub_dir), session_options=options)
    assert encoder.intra_op_num_threads is None and _ort_threads(encoder) == 1
    monkeypatch.setitem(sys.modules, "ray", None)  # Ray not importable: the class never asks for it
    assert Longformer2VecBatchEncoder(str(stub_dir)).intra_op_num_threads is None


def readme_ray_script() -> str:
    """The README's `embed.py`: the first Python block after "Save as `embed.py`" in its Ray section."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    match = re.search(r"Save as `embed\.py`.*?```python\n(.*?)```", readme, re.DOTALL)
    assert match, "README.md has no Ray script after 'Save as `embed.py`'"
    return match.group(1)


def test_readme_ray_script_embeds_every_id_once(tiny_fp32_dir: Path, tmp_path: Path) -> None:
    """The README's Ray script, run as written by `tests/ray_readme_driver.py` on a local 3-CPU Ray instance
    (two 1-CPU actors, one CPU left for reads and writes), over a few hundred documents in three Parquet
    files. The driver runs in its own process and fails on a Ray deprecation, after 120 s without progress
    (Ray Data's `ExecutionTimeoutError`), and in an actor whose ONNX Runtime threads differ from its CPUs;
    the process is killed after 10 minutes in any case. The token comes from the environment, so Ray writes
    no `~/.ray/auth_token`. Ray 2.60 maps 127.0.0.1 to the machine's own address
    (`resolve_ip_for_localhost`), so the instance cannot be pinned to loopback; it lives only for this test.
    """
    pytest.importorskip("ray")
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    texts = make_texts(300, seed=11, max_words=150)  # some beyond the tiny model's 128 tokens
    ids = [f"doc-{i}" for i in range(len(texts))]
    source, out = tmp_path / "docs", tmp_path / "vectors"
    source.mkdir()
    for k in range(3):  # several files: several read tasks
        rows = slice(k * 100, (k + 1) * 100)
        pq.write_table(pa.table({"id": ids[rows], "text": texts[rows]}), source / f"part-{k}.parquet")
    script = tmp_path / "embed.py"
    script.write_text(readme_ray_script())
    driver = Path(__file__).resolve().parents[1] / "ray_readme_driver.py"
    env = dict(os.environ, RAY_USAGE_STATS_ENABLED="0", RAY_AUTH_MODE="token")
    env["RAY_AUTH_TOKEN"] = secrets.token_hex(32)
    cmd = [sys.executable, str(driver), str(script), str(tiny_fp32_dir), str(source), str(out)]
    with subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, start_new_session=True
    ) as proc:
        try:
            log, _ = proc.communicate(timeout=600)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)  # the driver and the Ray processes it started
            log, _ = proc.communicate()
            pytest.fail(f"the README's Ray script ran past 10 minutes:\n{log[-4000:]}")
    assert proc.returncode == 0, log[-6000:]

    table = pq.read_table(out).to_pydict()
    got = dict(zip(table["id"], table["vector"], strict=True))
    print(f"{len(table['id'])} rows, {len(got)} distinct ids from {len(list(out.glob('*.parquet')))} files")
    assert len(table["id"]) == len(texts) and sorted(got) == sorted(ids)  # every id exactly once
    expected = Longformer2Vec(str(tiny_fp32_dir)).encode_numpy(texts)
    vectors = np.stack([np.asarray(got[i], dtype=np.float32) for i in ids])
    print(f"max abs difference to the API: {np.abs(vectors - expected).max():.2e}")
    np.testing.assert_allclose(vectors, expected, rtol=1e-5, atol=1e-5)
