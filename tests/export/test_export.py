"""Export parity: the ONNX graph against HF eager at many lengths, batches and window lists."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from transformers import LongformerModel

from longformer2vec.common import graph_feeds
from longformer2vec.contract import load_model_dir
from longformer2vec.export import ParityError, export_model
from longformer2vec.export import attention as export_attention_module
from longformer2vec.export.synthetic import make_random_longformer
from longformer2vec.export.verify import case_lengths
from longformer2vec.tables import format_ranking_table

CASE_NAMES = set(case_lengths(128, 8))


def _hf_states(hf_dir: Path, ids: np.ndarray, mask: np.ndarray, glob: np.ndarray) -> np.ndarray:
    model = LongformerModel.from_pretrained(hf_dir, add_pooling_layer=False).eval()
    with torch.no_grad():
        out = model(
            input_ids=torch.from_numpy(ids),
            attention_mask=torch.from_numpy(mask),
            global_attention_mask=torch.from_numpy(glob),
        )
    return out.last_hidden_state.numpy()


def _random_batch(rng: np.random.Generator, lengths: list[int], vocab: int, global_rows: list[list[int]]):
    width = max(lengths)
    ids = np.ones((len(lengths), width), dtype=np.int64)  # pad id 1
    mask = np.zeros_like(ids)
    glob = np.zeros_like(ids)
    for row, n in enumerate(lengths):
        ids[row, :n] = rng.integers(5, vocab, size=n)
        ids[row, 0], ids[row, n - 1] = 0, 2
        mask[row, :n] = 1
        for pos in global_rows[row]:
            glob[row, pos] = 1
    return ids, mask, glob


def _graph_path(model_dir: Path, precision: str = "fp32") -> Path:
    """The graph of an export that takes global tokens when it has one, else its plain one; or the
    ``model.onnx`` a test traced itself."""
    if not (model_dir / "manifest.json").is_file():
        return model_dir / "model.onnx"
    graphs = [g for g in load_model_dir(model_dir, verify_hash=False).graphs if g.precision == precision]
    return max(graphs, key=lambda g: g.global_tokens).path


def _run_graph(model_dir: Path, ids, mask, glob, precision: str = "fp32"):
    session = ort.InferenceSession(str(_graph_path(model_dir, precision)), providers=["CPUExecutionProvider"])
    feeds = {"input_ids": ids, "attention_mask": mask, "global_attention_mask": glob}
    inputs = [i.name for i in session.get_inputs()]
    assert glob.any() <= ("global_attention_mask" in inputs), "global tokens for a graph without them"
    return session.run(None, graph_feeds(feeds, inputs))


def test_manifest_records_every_parity_case(tiny_fp32_dir: Path, tiny_int8_dir: Path) -> None:
    fp32 = json.loads((tiny_fp32_dir / "manifest.json").read_text())
    int8 = json.loads((tiny_int8_dir / "manifest.json").read_text())
    assert (
        fp32["format_version"] == 2 and fp32["attention_windows"] == [8, 4, 8] and fp32["max_length"] == 128
    )
    plain, with_globals = fp32["graphs"]
    assert (plain["file"], plain["global_tokens"]) == ("onnx/model.onnx", False)
    assert (with_globals["file"], with_globals["global_tokens"]) == ("onnx/model_global.onnx", True)
    assert with_globals["inputs"] == ["input_ids", "attention_mask", "global_attention_mask"]
    assert plain["inputs"] == ["input_ids", "attention_mask"]
    (quantized,) = int8["graphs"]
    assert (quantized["file"], quantized["precision"]) == ("onnx/model_int8.onnx", "int8")
    assert with_globals["pad_multiple"] == 2 and with_globals["node_count"] > plain["node_count"] > 100
    assert len(with_globals["sha256"]) == 64
    assert (
        plain["layout"] == "cpu" and quantized["layout"] == "gpu"
    )  # asked for; automatic for a 32-wide model
    rows = with_globals["parity"]["fp32"]
    assert {r["case"] for r in rows} == CASE_NAMES and len(rows) == 2 * len(CASE_NAMES)
    assert {r["global_first_token"] for r in rows} == {False, True}
    assert len(plain["parity"]["fp32"]) == len(CASE_NAMES)  # no global cases for a graph without them
    assert next(r["lengths"] for r in rows if r["case"] == "model_max") == [128]
    for r in rows + plain["parity"]["fp32"]:
        assert r["pooled_min_cosine"] >= 0.99999 and r["token_max_abs"] < 1e-4, r
    int8_label = [k for k in quantized["parity"] if k.startswith("int8")][-1]
    assert quantized["quantization"]["name"] in int8_label
    for r in quantized["parity"][int8_label]:
        assert r["pooled_min_cosine"] >= 0.99, r
    assert plain["ranking"] is None and with_globals["ranking"] is None  # fp32 keeps its token-level gate
    assert set(quantized["ranking"]) == {k for k in quantized["parity"] if k != "fp32"}
    assert quantized["parity_thresholds"]["ranking_min"]["centered_median_cosine"] == 0.97
    rows = quantized["ranking"][int8_label]
    assert [r["global_first_token"] for r in rows] == [False] and rows[0]["texts"] >= 20  # a plain graph
    for r in rows:
        assert r["centered_median_cosine"] >= 0.97 and r["spearman"] >= 0.98 and r["tokens_max"] == 128, r


def test_directory_has_the_files_other_tools_read(tiny_fp32_dir: Path, tiny_hf: Path) -> None:
    """The hub convention: HF config, tokenizer files with the pad token and the graph's maximum length,
    sentence-transformers modules with mean pooling; each file what the exporter builds."""
    from longformer2vec.export.consumer_files import consumer_files

    config = json.loads((tiny_fp32_dir / "config.json").read_text())
    assert config["model_type"] == "longformer" and config["hidden_size"] == 32
    tokenizer_config = json.loads((tiny_fp32_dir / "tokenizer_config.json").read_text())
    assert tokenizer_config["tokenizer_class"] == "RobertaTokenizer"
    assert tokenizer_config["model_max_length"] == 128  # the graph's maximum, not max_position_embeddings
    assert tokenizer_config["pad_token"] == "<pad>" and tokenizer_config["add_prefix_space"] is False
    specials = json.loads((tiny_fp32_dir / "special_tokens_map.json").read_text())
    assert specials["pad_token"] == "<pad>" and specials["bos_token"] == "<s>"
    modules = json.loads((tiny_fp32_dir / "modules.json").read_text())
    assert [m["type"].rsplit(".", 1)[-1] for m in modules] == ["Transformer", "Pooling"]
    pooling = json.loads((tiny_fp32_dir / "1_Pooling" / "config.json").read_text())
    assert pooling["pooling_mode_mean_tokens"] and not pooling["pooling_mode_cls_token"]
    assert pooling["word_embedding_dimension"] == 32
    assert json.loads((tiny_fp32_dir / "sentence_bert_config.json").read_text())["max_seq_length"] == 128
    tokenizer_json = json.loads((tiny_fp32_dir / "tokenizer.json").read_text())
    assert tokenizer_json["padding"] is None and tokenizer_json["truncation"] is None
    built = consumer_files(tokenizer_json, specials, 32, 128)
    for relative, data in built.items():
        assert json.loads((tiny_fp32_dir / relative).read_text()) == data, relative
    card = (tiny_fp32_dir / "card.md").read_text()
    assert "huggingface.co" not in card  # a local checkpoint has no hub page


@pytest.mark.parametrize(
    ("lengths", "global_rows"),
    [
        ([1], [[]]),
        ([2], [[0]]),
        ([5], [[]]),
        ([4], [[0]]),
        ([17], [[3, 16]]),
        ([9, 10, 11, 12], [[], [0], [], [11]]),  # around s + 2w = 10: dense below, shifted windows above
        ([33, 7, 64, 1], [[0], [], [0, 5, 63], []]),
        ([128, 100], [[0], [99]]),
        ([127, 3, 65], [list(range(9)), [2], []]),
    ],
)
def test_graph_matches_hf_at_any_shape(tiny_hf: Path, tiny_fp32_dir: Path, lengths, global_rows) -> None:
    """Shapes never seen at trace time, several global tokens per row, rows without any."""
    assert_matches_hf(tiny_hf, lambda *feeds: _run_graph(tiny_fp32_dir, *feeds), lengths, global_rows)


def assert_matches_hf(
    hf_dir: Path, run, lengths: list[int], global_rows: list[list[int]], label: str = ""
) -> None:
    """``run(ids, mask, global_mask) -> (hidden, pooled, ...)`` on a random batch of ``lengths`` against HF
    eager: token states (real tokens) and pooled vectors within 1e-4."""
    rng = np.random.default_rng(sum(lengths))
    ids, mask, glob = _random_batch(rng, lengths, 200, global_rows)
    ref = _hf_states(hf_dir, ids, mask, glob)
    hidden, pooled = run(ids, mask, glob)[:2]
    real = mask.astype(bool)
    diff = np.abs(hidden[real] - ref[real]).max()
    ref_pooled = (ref * mask[..., None]).sum(1) / mask.sum(1, keepdims=True)
    print(f"{label}lengths={lengths} globals={global_rows} token max|d|={diff:.2e}")
    assert diff < 1e-4
    np.testing.assert_allclose(pooled, ref_pooled, atol=1e-4)


@pytest.mark.parametrize("layout", ["cpu", "gpu"])
def test_graph_without_global_tokens(tmp_path: Path, tiny_hf: Path, layout: str) -> None:
    """``global_tokens=False``: no global_attention_mask input, none of the global rows' nodes (no TopK,
    no scatter, no global projections), and still HF's function (no global tokens) at any shape."""
    out = export_model(
        str(tiny_hf),
        tmp_path / "both",
        precision="fp32",
        layout=layout,
        global_tokens=True,
        progress=lambda _: None,
    )
    plain = load_model_dir(out).find("fp32", global_tokens=False)
    assert plain is not None and plain.inputs == ["input_ids", "attention_mask"]
    assert all(not r["global_first_token"] for r in plain.parity["fp32"])
    assert len(plain.parity["fp32"]) == len(CASE_NAMES)
    graph = onnx.load(str(out / "onnx" / "model.onnx"))
    ops = {node.op_type for node in graph.graph.node}
    assert not ops & {"TopK", "ScatterElements", "ScatterND"}, ops
    assert not [i.name for i in graph.graph.initializer if "global" in i.name]
    nodes = len(onnx.load(str(out / "onnx" / "model_global.onnx")).graph.node)
    print(f"{layout}: {nodes} nodes with global tokens, {len(graph.graph.node)} without")
    assert len(graph.graph.node) < nodes - 3 * 10  # at least ten nodes per layer gone

    session = ort.InferenceSession(str(out / "onnx" / "model.onnx"), providers=["CPUExecutionProvider"])
    for lengths in ([1], [5], [9, 10, 11, 12], [33, 7, 64, 1], [128, 100], [127, 3, 65]):
        assert_matches_hf(
            tiny_hf,
            lambda ids, mask, _glob: session.run(None, {"input_ids": ids, "attention_mask": mask}),
            lengths,
            [[] for _ in lengths],
            f"{layout} without global tokens, ",
        )
    with pytest.raises(Exception, match="global_attention_mask"):  # fed anyway: refused, not ignored
        ids = np.array([[0, 5, 2]])
        session.run(None, {"input_ids": ids, "attention_mask": ids * 0 + 1, "global_attention_mask": ids * 0})


@pytest.mark.parametrize("windows", [[4, 8, 16], [6, 6, 6]])
def test_per_layer_windows(tmp_path: Path, windows: list[int]) -> None:
    """Mixed windows (lcm padding) and an odd one-sided window (3) export and pass the gate."""
    hf_dir = make_random_longformer(tmp_path / "hf", "tiny", attention_window=windows, seed=3)
    out = export_model(
        str(hf_dir), tmp_path / "onnx", precision="fp32", global_tokens=True, progress=lambda _: None
    )
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["attention_windows"] == windows
    rng = np.random.default_rng(0)
    ids, mask, glob = _random_batch(rng, [37, 9, 50], 200, [[0], [], [4, 49]])
    ref = _hf_states(hf_dir, ids, mask, glob)
    hidden, _ = _run_graph(out, ids, mask, glob)
    assert np.abs(hidden[mask.astype(bool)] - ref[mask.astype(bool)]).max() < 1e-4


@pytest.mark.parametrize("layout", ["cpu", "gpu"])
def test_inputs_up_to_one_block_run_unpadded(tmp_path: Path, layout: str) -> None:
    """Query blocks of 8 and 4 tokens (windows 32/16/32): an input of up to 4 tokens is one block as it
    is in every layer (a sentence costs its own length, not a padded block), longer ones are padded to
    the blocks' multiple (8); both match HF, in one batch or alone."""
    import onnx

    from longformer2vec.export.convert import export_onnx
    from longformer2vec.export.model import LongformerForExport

    hf_dir = make_random_longformer(tmp_path / "hf", "tiny", attention_window=[32, 16, 32], seed=5)
    wrapper = LongformerForExport(LongformerModel.from_pretrained(hf_dir, add_pooling_layer=False), layout)
    assert (wrapper.pad_multiple, wrapper.unpadded_up_to) == (8, 4)
    graph = export_onnx(wrapper.eval(), tmp_path / "model.onnx")
    embedded = next(n for n in graph.graph.node if n.op_type == "LayerNormalization").output[0]
    graph.graph.output.append(onnx.helper.make_tensor_value_info(embedded, onnx.TensorProto.FLOAT, None))
    session = ort.InferenceSession(graph.SerializeToString(), providers=["CPUExecutionProvider"])
    for lengths, global_rows, width in [
        ([1], [[0]], 1),
        ([3], [[]], 3),
        ([4, 2], [[0], [0]], 4),
        ([5], [[]], 8),
        ([9, 4], [[0], []], 16),
        ([40], [[0, 39]], 40),
    ]:

        def run(ids, mask, glob, width=width, lengths=lengths):
            outputs = session.run(
                None, {"input_ids": ids, "attention_mask": mask, "global_attention_mask": glob}
            )
            assert outputs[2].shape[1] == width, (lengths, outputs[2].shape)  # the length the layers ran at
            return outputs

        assert_matches_hf(hf_dir, run, lengths, global_rows, f"{layout}, ")


@pytest.mark.parametrize("layout", ["cpu", "gpu"])
def test_layers_carry_no_shape_arithmetic(tmp_path: Path, layout: str) -> None:
    """Every Reshape in an attention layer takes a constant shape, one built once before the layers, or
    the Shape of one tensor (``reshape_as``): no Shape -> Gather -> Unsqueeze -> Concat chains per layer
    (each node is a kernel call; they were over half of longformer-base's graph). The layers' node
    counts are equal, and the graph still matches HF at lengths it was not traced at."""
    import collections

    from longformer2vec.export.convert import export_onnx
    from longformer2vec.export.model import LongformerForExport

    hf_dir = make_random_longformer(tmp_path / "hf", "tiny", attention_window=[16, 16, 16], seed=6)
    wrapper = LongformerForExport(LongformerModel.from_pretrained(hf_dir, add_pooling_layer=False), layout)
    graph = export_onnx(wrapper.eval(), tmp_path / "model.onnx").graph
    producer = {out: node for node in graph.node for out in node.output}
    constants = {t.name for t in graph.initializer}
    per_layer: collections.Counter[str] = collections.Counter()
    for node in graph.node:
        if not node.name.startswith("/attentions."):
            continue
        layer = node.name.split("/")[1]
        per_layer[layer] += 1
        if node.op_type != "Reshape":
            continue
        source = producer.get(node.input[1])
        assert (
            node.input[1] in constants
            or source is None
            or source.op_type in ("Constant", "Shape")
            or not source.name.startswith(f"/{layer}/")
        ), f"{node.name}: shape computed in the layer by {source.op_type} {source.name}"
    assert len(per_layer) == 3 and len(set(per_layer.values())) == 1, per_layer
    assert_matches_hf(hf_dir, lambda *feeds: _run_graph(tmp_path, *feeds), [61, 7], [[0], []], f"{layout}, ")


def test_attention_projections_are_2d_and_merged_for_the_gpu(tmp_path: Path) -> None:
    """Every weight the attention multiplies by is a 2-D [in, out] matrix, so the int8 quantizer reaches
    all of them (the global key and value projections were 3-D per-head products, left fp32 and read
    in full at every call, even without global tokens). The batched (CUDA) layout runs one [D, 3D]
    MatMul for queries, keys and values, the 1/sqrt(d) scale folded into the weights (no Mul), and
    gathers keys and values of the global slots from the heads it already has (no Concat of k or v):
    each node is a kernel launch on a GPU. Both layouts still match HF with global tokens in
    different places per row."""
    from longformer2vec.export.convert import export_onnx
    from longformer2vec.export.model import LongformerForExport

    hf_dir = make_random_longformer(tmp_path / "hf", "tiny", attention_window=[16, 8, 16], seed=7)
    hf = LongformerModel.from_pretrained(hf_dir, add_pooling_layer=False)
    embed = hf.config.hidden_size
    for layout in ("gpu", "cpu"):
        out = tmp_path / layout
        out.mkdir()
        graph = export_onnx(LongformerForExport(hf, layout).eval(), out / "model.onnx").graph
        weights = {t.name: list(t.dims) for t in graph.initializer}
        layer = [n for n in graph.node if n.name.startswith("/attentions.0/")]
        matrices = [weights[n.input[1]] for n in layer if n.op_type == "MatMul" and n.input[1] in weights]
        assert all(len(dims) == 2 for dims in matrices), matrices
        projections = sorted(dims[1] for dims in matrices)  # output widths
        if layout == "gpu":  # global query, key, value; merged q | k | v
            assert projections == [embed] * 3 + [3 * embed], projections
            assert not [n.name for n in layer if n.op_type == "Concat"]
        else:  # q, k, v and the global three
            assert projections == [embed] * 6, projections
        assert_matches_hf(
            hf_dir,
            lambda *feeds, out=out: _run_graph(out, *feeds),
            [40, 9, 17],
            [[0, 39], [], [3]],
            f"{layout}, ",
        )


def test_default_layout_by_precision_and_width() -> None:
    from types import SimpleNamespace

    from longformer2vec.export.model import default_layout

    base, small = SimpleNamespace(hidden_size=768), SimpleNamespace(hidden_size=64)
    assert default_layout(base, "int8") == default_layout(base, "fp32") == "cpu"
    assert default_layout(base, "fp16") == "gpu"  # the CUDA graph
    assert default_layout(small, "int8") == "gpu"  # per-head chains too small to pay off
    with pytest.raises(ValueError, match="layout must be one of"):
        export_model("unused", "unused", layout="tpu")


def test_export_refuses_a_wrong_graph(tmp_path: Path, tiny_hf: Path, monkeypatch) -> None:
    """A subtly wrong attention (drops the farthest left key, |i-j| = w) must fail the gate."""

    def narrow(query, key, window):
        return ((query - key).abs() <= window) & ((query - key) != window)

    monkeypatch.setattr(export_attention_module, "in_band", narrow)
    target = tmp_path / "out"
    with pytest.raises(ParityError, match=r"fp32 graph failed parity .*model_max \(lengths \[128\]"):
        export_model(str(tiny_hf), target, precision="fp32", progress=lambda _: None)
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []  # no staging directory left behind


def test_export_will_not_clobber_foreign_directory(tmp_path: Path, tiny_hf: Path) -> None:
    target = tmp_path / "mine"
    target.mkdir()
    (target / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="not a longformer2vec export"):
        export_model(str(tiny_hf), target, precision="fp32", progress=lambda _: None)
    assert (target / "notes.txt").read_text() == "keep me"


def test_cli_export_failure_exit_code(tmp_path: Path) -> None:
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "longformer2vec",
            "export",
            str(tmp_path / "nope"),
            "--output",
            str(tmp_path / "o"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert res.returncode != 0 and "Traceback" not in res.stderr and "nope" in res.stderr


def test_cli_export_writes_and_adds_graphs(tmp_path: Path, tiny_hf: Path, capsys) -> None:
    """``--precision fp32,int8`` writes both graphs in one run; a later export into the same directory adds
    (``--global-tokens``: the global graph beside the default one) and replaces only its own twins; a
    directory without global tokens refuses ``--global-attention cls`` naming the flag."""
    from longformer2vec.cli import main

    out = tmp_path / "model"
    assert main(["export", str(tiny_hf), "--output", str(out), "--precision", "fp32,int8"]) == 0
    assert "graphs:         fp32, int8" in capsys.readouterr().out
    fp32_sha = load_model_dir(out).find("fp32", False).sha256
    assert main(["embed", "--model", str(out), "--global-attention", "cls", "a dog"]) == 1
    error = capsys.readouterr().err
    assert "takes global tokens" in error and "--global-tokens" in error
    assert main(["embed", "--model", str(out), "a dog"]) == 0

    assert main(["export", str(tiny_hf), "--output", str(out), "--precision", "int8", "--global-tokens"]) == 0
    manifest = load_model_dir(out)  # every sha256 checked
    assert manifest.graph_summary() == "fp32, int8, int8, global tokens"
    assert manifest.find("fp32", False).sha256 == fp32_sha  # untouched
    assert sorted(p.name for p in (out / "onnx").iterdir()) == [
        "model.onnx",
        "model_global_int8.onnx",
        "model_int8.onnx",
    ]
    assert not list(tmp_path.glob(".model.tmp-*"))  # no staging left behind
    capsys.readouterr()
    assert main(["embed", "--model", str(out), "--global-attention", "cls", "a dog"]) == 0
    assert main(["export", str(tiny_hf), "--output", str(out), "--no-global-tokens"]) == 0  # still accepted
    with pytest.raises(SystemExit) as exit_info:
        main(["export", str(tiny_hf), "--output", str(out), "--precision", "int4"])
    assert exit_info.value.code == 2 and "choose from fp32, int8, fp16" in capsys.readouterr().err


def test_fp16_export_is_verified_and_keeps_pooling_in_fp32(
    tmp_path: Path, tiny_hf: Path, tiny_fp32_dir: Path
) -> None:
    """fp16 graph: float32 in/out, fp16 inside, pooling nodes fp32; parity recorded and near fp32."""
    import onnx

    from longformer2vec.export.convert import export_onnx, pooling_only_nodes
    from longformer2vec.export.model import LongformerForExport

    out = export_model(str(tiny_hf), tmp_path / "fp16", precision="fp16", progress=lambda _: None)
    (manifest,) = json.loads((out / "manifest.json").read_text())["graphs"]
    assert manifest["precision"] == "fp16" and manifest["file"] == "onnx/model_fp16.onnx"
    (label,) = [k for k in manifest["parity"] if k.startswith("fp16")]
    assert {r["case"] for r in manifest["parity"][label]} == CASE_NAMES
    assert min(r["pooled_min_cosine"] for r in manifest["parity"][label]) >= 0.999
    print(format_ranking_table(manifest["ranking"][label], label))  # fp16 is held to the same floors as int8
    assert min(r["centered_median_cosine"] for r in manifest["ranking"][label]) >= 0.99

    graph = onnx.load(str(out / "onnx" / "model_fp16.onnx"))
    types = {o.name: o.type.tensor_type.elem_type for o in graph.graph.output}
    assert types == {
        "last_hidden_state": onnx.TensorProto.FLOAT,
        "sentence_embedding": onnx.TensorProto.FLOAT,
    }
    weights = [i for i in graph.graph.initializer if len(i.dims) == 2 and min(i.dims) > 8]
    assert weights and all(i.data_type == onnx.TensorProto.FLOAT16 for i in weights)
    # the fp32 graph the converter started from: the fp16 export traces the GPU layout
    assert manifest["layout"] == "gpu"
    gpu_graph = export_onnx(
        LongformerForExport(
            LongformerModel.from_pretrained(tiny_hf), layout="gpu", global_tokens=False
        ).eval(),
        tmp_path / "gpu.onnx",
    )
    pooling = set(pooling_only_nodes(gpu_graph.graph))
    assert any("ReduceSum" in name for name in pooling)
    by_name = {n.name: n for n in graph.graph.node}
    assert all(name in by_name for name in pooling)  # kept (not renamed or dropped) by the converter

    rng = np.random.default_rng(3)
    ids, mask, glob = _random_batch(rng, [37, 128, 5], 300, [[], [], []])
    hidden16, pooled16 = _run_graph(out, ids, mask, glob, precision="fp16")
    _, pooled32 = _run_graph(tiny_fp32_dir, ids, mask, glob)
    assert np.isfinite(hidden16).all() and hidden16.dtype == np.float32
    cos = (
        (pooled16 * pooled32).sum(-1) / np.linalg.norm(pooled16, axis=-1) / np.linalg.norm(pooled32, axis=-1)
    )
    assert cos.min() > 0.999
    assert np.abs(pooled16 - pooled32).max() > 1e-6  # it really is a different (fp16) graph


def test_duplicate_casts_from_old_converters_are_dropped() -> None:
    """onnxruntime < 1.32's fp16 converter emits one identical Cast per consumer: keep one."""
    import onnx
    from onnx import TensorProto, helper

    from longformer2vec.export.convert import _drop_duplicate_casts

    cast = helper.make_node("Cast", ["x"], ["x_cast_to_fp32"], to=TensorProto.FLOAT, name="c")
    other = helper.make_node("Cast", ["y"], ["y_cast_to_fp32"], to=TensorProto.FLOAT, name="c2")
    add = helper.make_node("Add", ["x_cast_to_fp32", "y_cast_to_fp32"], ["z"], name="a")
    graph = helper.make_graph(
        [cast, other, add, cast],
        "g",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT16, [1]) for n in "xy"],
        [helper.make_tensor_value_info("z", TensorProto.FLOAT, [1])],
    )
    _drop_duplicate_casts(graph)
    assert [n.name for n in graph.node] == ["c", "c2", "a"]
    onnx.checker.check_model(helper.make_model(graph))
