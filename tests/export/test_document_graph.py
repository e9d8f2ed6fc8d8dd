"""Document graphs (``export --document-graph``): token ids of any length in, ``Longformer2Vec.encode``'s
vector out, in bare ONNX Runtime with no longformer2vec code: Python's ``onnxruntime``, ``onnxruntime-node``
and ``onnxruntime-web`` (wasm backend, in Node), on texts of 1x, 3x and 10x ``max_length`` tokens.

The Node runs use ``tests/consumers/web/run_document.mjs``; onnxruntime-node comes from clients/node's
node_modules, onnxruntime-web from tests/consumers/web's (``.ci/consumers.sh`` installs both). They skip
when missing, unless LONGFORMER2VEC_REQUIRE_NODE=1 / LONGFORMER2VEC_REQUIRE_CONSUMERS=1 (CI).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from longformer2vec import Longformer2Vec
from longformer2vec.contract import (
    ATTENTION_MASK,
    DOCUMENT_EMBEDDING,
    INPUT_IDS,
    document_graph_file,
    graph_file,
    read_manifest,
)
from longformer2vec.document_graph import document_graphs, find_document_graph, verify_document_graph
from longformer2vec.errors import ModelLoadError, ParityError

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "tests" / "consumers" / "web" / "run_document.mjs"
ORT_NODE = ROOT / "clients" / "node" / "node_modules" / "onnxruntime-node"
ORT_WEB = ROOT / "tests" / "consumers" / "web" / "node_modules" / "onnxruntime-web"
MAX_ABS = 1e-5
MULTIPLES = (1, 3, 10)
UNIT = "I enjoy taking long walks along the beach with my dog. Longformer reads 4096 tokens, 42 times. "


@pytest.fixture(scope="session")
def doc_dir(tiny_hf: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from longformer2vec.export import export_model

    out = tmp_path_factory.mktemp("onnx") / "document"
    return export_model(
        str(tiny_hf), out, precision="fp32,int8", document_graph=True, progress=lambda _: None
    )


@pytest.fixture(scope="session")
def cases(doc_dir: Path) -> dict[str, tuple[list[list[int]], np.ndarray]]:
    """Per precision: the ids of texts of 1x, 3x, 10x max_length tokens and encode's vectors of them."""
    from longformer2vec.export.document_export import text_of_tokens

    out = {}
    for precision in ("fp32", "int8"):
        model = Longformer2Vec(str(doc_dir), precision=precision)
        texts = [text_of_tokens(model.tokenizer, m * model.max_length, UNIT) for m in MULTIPLES]
        ids = [model.tokenizer.encode(t).ids for t in texts]
        assert [len(i) for i in ids] == [m * model.max_length for m in MULTIPLES]
        out[precision] = ids, np.asarray([model.encode(t) for t in texts], dtype=np.float32)
    return out


def _session(path: Path) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_bare_onnxruntime_gives_encode_vector(doc_dir: Path, cases, precision: str) -> None:
    session = _session(doc_dir / document_graph_file(precision))
    assert [i.name for i in session.get_inputs()] == [INPUT_IDS]  # attention_mask has a default
    assert [o.name for o in session.get_outputs()] == [DOCUMENT_EMBEDDING]
    ids, expected = cases[precision]
    for row, want in zip(ids, expected, strict=True):
        feed = np.asarray([row], dtype=np.int64)
        got = session.run(None, {INPUT_IDS: feed})[0]
        assert got.shape == (1, want.shape[0]) and got.dtype == np.float32
        diff = float(np.abs(got[0] - want).max())
        print(f"{precision} {len(row)} tokens: max |d| {diff:.2e}")
        assert diff <= MAX_ABS
        # a right-padded input with its mask gives the same vector
        padded = np.concatenate([feed, np.full((1, 7), 1, dtype=np.int64)], axis=1)
        mask = (np.arange(padded.shape[1]) < len(row)).astype(np.int64)[None]
        got = session.run(None, {INPUT_IDS: padded, ATTENTION_MASK: mask})[0]
        assert float(np.abs(got[0] - want).max()) <= MAX_ABS


def test_wrong_window_rule_would_be_seen(doc_dir: Path, cases) -> None:
    """The comparison can fail: the encoder's vector of the first max_length ids (what other tools
    give by truncating) is far from encode's vector of a 10x text."""
    ids, expected = cases["fp32"]
    session = _session(doc_dir / graph_file("fp32"))
    first = np.asarray([ids[2][:127] + ids[2][-1:]], dtype=np.int64)
    truncated = session.run(["sentence_embedding"], {INPUT_IDS: first, ATTENTION_MASK: np.ones_like(first)})[
        0
    ]
    assert float(np.abs(truncated[0] - expected[2]).max()) > 100 * MAX_ABS


def test_weights_are_not_copied(doc_dir: Path) -> None:
    """The document graph's weights are external data inside its encoder file, which stays as it was."""
    for precision in ("fp32", "int8"):
        document = onnx.load(str(doc_dir / document_graph_file(precision)), load_external_data=False)
        encoder = doc_dir / graph_file(precision)
        external = [i for i in document.graph.initializer if i.data_location == onnx.TensorProto.EXTERNAL]
        assert external and {e.value for i in external for e in i.external_data if e.key == "location"} == {
            encoder.name
        }
        assert (doc_dir / document_graph_file(precision)).stat().st_size < encoder.stat().st_size
        assert not any(
            i.data_location == onnx.TensorProto.EXTERNAL for i in onnx.load(str(encoder)).graph.initializer
        )


def test_manifest_and_info_list_document_graphs(doc_dir: Path) -> None:
    manifest = read_manifest(doc_dir)
    graphs = document_graphs(manifest)
    assert [g.precision for g in graphs] == ["fp32", "int8"]
    for graph in graphs:
        verify_document_graph(graph, manifest)
        assert graph.raw["kind"] == "document" and graph.outputs == [DOCUMENT_EMBEDDING]
        assert [r["tokens"] for r in graph.raw["parity"]] == [128, 320, 1280]
        assert max(r["max_abs"] for r in graph.raw["parity"]) <= MAX_ABS
    assert [g.file for g in manifest.graphs] == [
        graph_file("fp32"),
        graph_file("int8"),
    ]  # not listed as graphs
    res = subprocess.run(
        [sys.executable, "-m", "longformer2vec", "info", str(doc_dir)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert res.returncode == 0, res.stderr
    assert "onnx/model_document_int8.onnx: document graph, int8" in res.stdout
    assert "document graph onnx/model_document.onnx vs the runtime's windowed vector" in res.stdout


def test_tampered_encoder_is_refused(doc_dir: Path, tmp_path: Path) -> None:
    copy = shutil.copytree(doc_dir, tmp_path / "copy")
    data = bytearray((copy / graph_file("int8")).read_bytes())
    data[-10] ^= 0xFF
    (copy / graph_file("int8")).write_bytes(bytes(data))
    manifest = read_manifest(copy)
    with pytest.raises(ModelLoadError, match="sha256 mismatch"):
        verify_document_graph(find_document_graph(manifest, "int8"), manifest)


def test_reexport_drops_document_graph_of_rewritten_encoder(
    tiny_hf: Path, doc_dir: Path, tmp_path: Path
) -> None:
    """A document graph reads its weights from its encoder's file: rewriting that file without
    --document-graph removes the document graph; the other precision's stays."""
    from longformer2vec.export import export_model

    copy = shutil.copytree(doc_dir, tmp_path / "copy")
    export_model(str(tiny_hf), copy, precision="fp32", progress=lambda _: None)
    manifest = read_manifest(copy)
    assert [g.precision for g in document_graphs(manifest)] == ["int8"]
    assert not (copy / document_graph_file("fp32")).exists()
    verify_document_graph(find_document_graph(manifest, "int8"), manifest)


def test_export_refuses_a_wrong_document_graph(tiny_hf: Path, tmp_path: Path, monkeypatch) -> None:
    """A document graph whose windows overlap differently from the runtime's fails the export's check."""
    from longformer2vec.export import document, export_model

    real = document.build_document_graph

    def shifted(*args, **kwargs):
        kwargs["chunk_overlap"] += 5
        return real(*args, **kwargs)

    monkeypatch.setattr(document, "build_document_graph", shifted)
    out = tmp_path / "refused"
    with pytest.raises(ParityError, match="fp32 document graph differs"):
        export_model(str(tiny_hf), out, precision="fp32", document_graph=True, progress=lambda _: None)
    assert not out.exists()


# ---------------------------------------------------------------- JavaScript bindings


def _node_binding(kind: str) -> str:
    node = shutil.which("node")
    if kind == "node":
        installed, required, hint = ORT_NODE.is_dir(), "LONGFORMER2VEC_REQUIRE_NODE", "clients/node: npm ci"
    else:
        installed, required, hint = (
            ORT_WEB.is_dir(),
            "LONGFORMER2VEC_REQUIRE_CONSUMERS",
            "bash .ci/consumers.sh",
        )
    if node is None or not installed:
        message = f"onnxruntime-{kind} or node is not installed ({hint})"
        if os.environ.get(required) == "1":
            pytest.fail(f"{required}=1 but {message}")
        pytest.skip(message)
    return str(ORT_NODE) if kind == "node" else "web"


@pytest.mark.parametrize("kind", ["node", "web"])
@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_javascript_binding_gives_encode_vector(
    doc_dir: Path, cases, tmp_path: Path, kind: str, precision: str
) -> None:
    binding = _node_binding(kind)
    ids, expected = cases[precision]
    ids_file = tmp_path / "ids.json"
    ids_file.write_text(json.dumps(ids))
    graph = doc_dir / document_graph_file(precision)
    res = subprocess.run(
        ["node", str(SCRIPT), binding, str(graph), str(ids_file)], capture_output=True, text=True, check=False
    )
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert out["inputs"] == [INPUT_IDS]
    got = np.asarray(out["vectors"], dtype=np.float32)
    diffs = np.abs(got - expected).max(axis=1)
    print(f"onnxruntime-{kind} {precision}: max |d| per text {[f'{d:.2e}' for d in diffs]}")
    assert got.shape == expected.shape and float(diffs.max()) <= MAX_ABS
