"""Model directory validation, model resolution/cache, cards and numpy helpers."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from longformer2vec import ExportUnavailableError, Longformer2Vec, ModelLoadError, load_model_dir, parse_card
from longformer2vec.batching import pad_batch, split_long
from longformer2vec.common import mean_pooling, normalize
from longformer2vec.hub import cache_key, default_cache_dir, resolve_model
from longformer2vec.hub_probe import hub_problem
from longformer2vec.models import card_path, default_card
from tests.helpers_runtime import stub_graph_path, train_roberta_style_tokenizer, write_stub_model_dir


def _fake_exporter(monkeypatch: pytest.MonkeyPatch, export_model) -> None:
    """The exporter replaced by ``export_model``, and the hub taken as reachable."""
    from longformer2vec import hub

    monkeypatch.setattr(hub, "_exporter", lambda name, missing_dir=None: export_model)
    monkeypatch.setattr(hub, "hub_problem", lambda name: None)


def _copy(stub_dir: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(stub_dir, tmp_path / "copy"))


def test_missing_dir_names_path(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    with pytest.raises(ModelLoadError, match=str(missing)):
        load_model_dir(missing)
    with pytest.raises(ModelLoadError, match=str(missing)):
        Longformer2Vec(str(missing))  # path-like names never fall through to a hub export


def test_dir_without_manifest_or_config(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match=str(tmp_path)):
        Longformer2Vec(str(tmp_path))


def test_corrupt_manifest_names_path(stub_dir: Path, tmp_path: Path) -> None:
    d = _copy(stub_dir, tmp_path)
    (d / "manifest.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(ModelLoadError, match=str(d / "manifest.json")):
        Longformer2Vec(str(d))


def test_missing_required_key(stub_dir: Path, tmp_path: Path) -> None:
    d = _copy(stub_dir, tmp_path)
    data = json.loads((d / "manifest.json").read_text())
    del data["vector_length"]
    (d / "manifest.json").write_text(json.dumps(data))
    with pytest.raises(ModelLoadError, match="vector_length"):
        load_model_dir(d)


def test_sha_mismatch_names_graph(stub_dir: Path, tmp_path: Path) -> None:
    d = _copy(stub_dir, tmp_path)
    graph = stub_graph_path(d)
    with open(graph, "ab") as fh:
        fh.write(b"\0")
    with pytest.raises(ModelLoadError, match=r"sha256 mismatch.*" + str(graph)):
        Longformer2Vec(str(d))
    assert load_model_dir(d, verify_hash=False).model_id == "stub/longformer-tiny"


def test_missing_graph_file(stub_dir: Path, tmp_path: Path) -> None:
    d = _copy(stub_dir, tmp_path)
    stub_graph_path(d).unlink()
    with pytest.raises(ModelLoadError, match=str(stub_graph_path(d))):
        load_model_dir(d)


def test_only_the_chosen_graph_is_hashed(tmp_path: Path) -> None:
    """A corrupt graph the runtime does not load does not stop it; `info` (verify_hash) still names it."""
    d = write_stub_model_dir(tmp_path / "m", precisions=("fp32", "int8"))
    with open(stub_graph_path(d, "fp32"), "ab") as fh:
        fh.write(b"\0")
    assert Longformer2Vec(str(d), providers=["CPUExecutionProvider"]).precision == "int8"
    with pytest.raises(ModelLoadError, match="sha256 mismatch.*" + str(stub_graph_path(d, "fp32"))):
        Longformer2Vec(str(d), precision="fp32")
    with pytest.raises(ModelLoadError, match="sha256 mismatch"):
        load_model_dir(d)


def test_graph_choice(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """int8 first on the CPU, fp16 first on CUDA, else what exists; a missing one names the export flag."""
    from longformer2vec.placement import choose_graph

    d = write_stub_model_dir(tmp_path / "m", precisions=("fp32", "int8", "fp16"), global_tokens=False)
    manifest = load_model_dir(d, verify_hash=False)
    assert choose_graph(manifest, None, "none", "cpu").precision == "int8"
    assert choose_graph(manifest, None, "none", "cuda").precision == "fp16"
    assert choose_graph(manifest, "fp32", "none", "cpu").file == "onnx/model.onnx"
    with caplog.at_level("INFO", logger="longformer2vec"):
        model = Longformer2Vec(str(d), providers=["CPUExecutionProvider"])
    assert model.precision == "int8" and model.graph.file == "onnx/model_int8.onnx"
    assert "onnx/model_int8.onnx (int8)" in caplog.text and "model_int8.onnx" in repr(model)
    with pytest.raises(ModelLoadError, match=r"takes global tokens.*--precision int8 --global-tokens"):
        Longformer2Vec(str(d), global_attention="cls", providers=["CPUExecutionProvider"])

    only_fp32 = write_stub_model_dir(tmp_path / "f", precisions=("fp32",), global_tokens=False)
    assert Longformer2Vec(str(only_fp32)).precision == "fp32"  # int8 preferred, fp32 is what exists
    with pytest.raises(ModelLoadError, match=r"has no int8 graph \(it holds: fp32\).*--precision int8"):
        Longformer2Vec(str(only_fp32), precision="int8")
    with pytest.raises(ModelLoadError, match=r"has no graph that takes global tokens \(it holds: fp32\)"):
        Longformer2Vec(str(only_fp32), global_attention="cls")


def test_format_1_directory_still_loads(stub_dir: Path, tmp_path: Path, stub_table: np.ndarray) -> None:
    """An export of the earlier format (one model.onnx beside a flat manifest) loads as it is."""
    old = tmp_path / "old"
    old.mkdir()
    shutil.copy(stub_dir / "tokenizer.json", old / "tokenizer.json")
    shutil.copy(stub_graph_path(stub_dir), old / "model.onnx")
    from longformer2vec.contract import sha256_file

    (old / "manifest.json").write_text(
        json.dumps(
            {
                "format_version": 1,
                "model_id": "stub/old",
                "precision": "int8",
                "graph_file": "model.onnx",
                "graph_sha256": sha256_file(old / "model.onnx"),
                "inputs": ["input_ids", "attention_mask", "global_attention_mask"],
                "pad_multiple": 8,
                "max_length": 32,
                "vector_length": 8,
                "pad_token_id": 1,
            }
        )
    )
    model = Longformer2Vec(str(old), global_attention="cls")
    assert model.graph.file == "model.onnx" and model.precision == "int8" and model.graph.global_tokens
    np.testing.assert_allclose(
        Longformer2Vec(str(old)).encode("dog"), Longformer2Vec(str(stub_dir)).encode("dog"), rtol=1e-6
    )
    (old / "manifest.json").write_text(
        json.dumps({"format_version": 7, "model_id": "x", "max_length": 2, "vector_length": 1, "graphs": []})
    )
    with pytest.raises(ModelLoadError, match=r"format_version 7.*export the model again"):
        Longformer2Vec(str(old))


def test_card_falls_back_when_missing(tmp_path: Path) -> None:
    d = write_stub_model_dir(tmp_path / "m", with_card=False, model_id="allenai/longformer-base-4096")
    m = Longformer2Vec(str(d))
    assert m.definition.vector_length == "768 (default)"  # packaged card for the known id
    d2 = write_stub_model_dir(tmp_path / "m2", with_card=False, model_id="someone/longformer-x")
    assert Longformer2Vec(str(d2)).definition.model_name == "someone/longformer-x"


def test_resolve_uses_cache_and_precision_key(
    stub_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LONGFORMER2VEC_CACHE", str(tmp_path / "cache"))
    assert default_cache_dir() == tmp_path / "cache"
    assert cache_key("allenai/longformer-base-4096") == "allenai--longformer-base-4096"
    target = tmp_path / "cache" / "allenai--longformer-base-4096"
    write_stub_model_dir(target, precisions=("int8",), global_tokens=False)
    # CPU-only providers -> default precision int8 -> the int8 cache entry
    m = Longformer2Vec("allenai/longformer-base-4096", providers=["CPUExecutionProvider"])
    assert m.model_dir == target
    assert resolve_model(str(stub_dir)) == stub_dir  # a model dir is used as is


def test_xdg_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("LONGFORMER2VEC_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert default_cache_dir() == tmp_path / "longformer2vec"


def test_export_unavailable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "longformer2vec.export", None)  # import -> ImportError
    with pytest.raises(ExportUnavailableError) as info:
        Longformer2Vec("allenai/longformer-base-4096", cache_dir=tmp_path, precision="fp32")
    msg = str(info.value)
    assert "pip install -e '.[export]'" in msg
    assert "longformer2vec export allenai/longformer-base-4096 --output DIR" in msg


def test_export_is_called_into_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, Path, str, bool]] = []

    def export_model(
        model: str, output_dir: str | Path, precision: str = "fp32", global_tokens: bool = False
    ) -> Path:
        """Adds the asked graphs to the directory, as the exporter does (plain, and global when asked)."""
        calls.append((model, Path(output_dir), precision, global_tokens))
        existing: set[tuple[str, bool]] = set()
        if (Path(output_dir) / "manifest.json").is_file():
            existing = {
                (g.precision, g.global_tokens) for g in load_model_dir(output_dir, verify_hash=False).graphs
            }
        kinds = existing | {(precision, False)} | ({(precision, True)} if global_tokens else set())
        for variant in (False, True):
            names = tuple(p for p, g in sorted(kinds) if g == variant)
            if names:
                write_stub_model_dir(tmp_path / f"build-{variant}", precisions=names, global_tokens=variant)
        merged = load_model_dir(tmp_path / "build-False", verify_hash=False)
        if (tmp_path / "build-True").is_dir():
            extra = load_model_dir(tmp_path / "build-True", verify_hash=False)
            shutil.copytree(
                tmp_path / "build-True" / "onnx", tmp_path / "build-False" / "onnx", dirs_exist_ok=True
            )
            merged.graphs += extra.graphs
            from longformer2vec.export.directory import write_manifest

            write_manifest(merged)
        shutil.rmtree(output_dir, ignore_errors=True)
        shutil.copytree(tmp_path / "build-False", output_dir)
        for leftover in ("build-False", "build-True"):
            shutil.rmtree(tmp_path / leftover, ignore_errors=True)
        return Path(output_dir)

    _fake_exporter(monkeypatch, export_model)
    target = tmp_path / "org--some-longformer"
    m = Longformer2Vec("org/some-longformer", cache_dir=tmp_path, precision="fp32")
    assert calls == [("org/some-longformer", target, "fp32", False)]  # no global tokens: fewer nodes
    assert m.model_dir == target and not m.graph.global_tokens and m.precision == "fp32"
    Longformer2Vec("org/some-longformer", cache_dir=tmp_path, precision="fp32")
    assert len(calls) == 1  # second load hits the cache

    # another precision is added to the same folder
    m = Longformer2Vec("org/some-longformer", cache_dir=tmp_path, precision="int8")
    assert calls[1:] == [("org/some-longformer", target, "int8", False)] and m.precision == "int8"

    # global attention needs a graph that takes global tokens: exported into the same folder
    m = Longformer2Vec("org/some-longformer", cache_dir=tmp_path, precision="fp32", global_attention="cls")
    assert calls[2:] == [("org/some-longformer", target, "fp32", True)]
    assert m.graph.global_tokens and m.graph.file == "onnx/model_global.onnx"
    Longformer2Vec("org/some-longformer", cache_dir=tmp_path, precision="fp32", global_attention="cls")
    Longformer2Vec("org/some-longformer", cache_dir=tmp_path, precision="int8")
    assert len(calls) == 3
    plain_only = write_stub_model_dir(tmp_path / "plain", global_tokens=False)
    with pytest.raises(ModelLoadError, match=r"global tokens.*--global-tokens"):
        Longformer2Vec(plain_only, global_attention="cls")  # an exported directory is used as it is


def test_offline_hub_id_names_model_and_alternative(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without network, a hub id is one error naming the model and the offline route, not a traceback
    (the export extra taken as installed, which the torch-free run has not)."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    _fake_exporter(monkeypatch, None)
    from longformer2vec import hub

    monkeypatch.setattr(hub, "hub_problem", hub_problem)
    with pytest.raises(ModelLoadError) as info:
        Longformer2Vec("org/not-in-any-cache", cache_dir=tmp_path, precision="fp32")
    message = str(info.value)
    assert (
        "'org/not-in-any-cache'" in message
        and "longformer2vec export org/not-in-any-cache --output DIR" in message
    )
    assert "\n" not in message


def test_parse_card_tolerant() -> None:
    card = parse_card("---\nmodel_id: \"text/x\"  \nvector_length: '5'\nnot a pair\n---\n\n## Hi\n")
    assert card.model_id == "text/x" and card.vector_length == "5"
    assert card.description == "## Hi"
    assert parse_card("no front matter").description == "no front matter"
    assert parse_card("---\nmodel_id: x\nno closing").model_id == ""


@pytest.mark.parametrize(
    ("model_id", "length", "repo"),
    [
        (
            "allenai/longformer-base-4096",
            "768 (default)",
            "https://huggingface.co/allenai/longformer-base-4096",
        ),
        (
            "allenai/longformer-large-4096",
            "1024 (default)",
            "https://huggingface.co/allenai/longformer-large-4096",
        ),
    ],
)
def test_packaged_cards(model_id: str, length: str, repo: str) -> None:
    path = card_path(model_id)
    assert path is not None and path.is_file()
    text = path.read_text(encoding="utf-8")
    assert "â€" not in text and "from longformer2vec import Longformer2Vec" in text
    card = parse_card(text)
    assert card.vector_length == length and card.repo == repo
    assert card.installation == "pip install -e . (in the longformer2vec checkout)"
    assert card.paper == "https://arxiv.org/abs/2004.05150" and card.release_date == "2020-04-10"
    assert card.short_description and "## Description" in card.description
    assert card_path("unknown/model") is None
    assert parse_card(default_card("unknown/model", 7)).vector_length == "7 (default)"
    assert parse_card(default_card("unknown/model", 7)).repo == "https://huggingface.co/unknown/model"
    assert parse_card(default_card("/tmp/some/checkpoint", 7)).repo == ""  # a local model has no hub page


def test_numpy_helpers() -> None:
    ids, mask = pad_batch([[5, 6, 7, 2, 3], [8]], pad_id=1, multiple=4)
    assert ids.dtype == np.int64 and mask.dtype == np.int64
    assert ids.tolist() == [[5, 6, 7, 2, 3, 1, 1, 1], [8, 1, 1, 1, 1, 1, 1, 1]]
    assert mask.tolist() == [[1] * 5 + [0] * 3, [1] + [0] * 7]
    ids, mask = pad_batch([[5, 6, 7], [8]], pad_id=1, multiple=4)  # within one multiple: not padded
    assert ids.tolist() == [[5, 6, 7], [8, 1, 1]] and mask.tolist() == [[1, 1, 1], [1, 0, 0]]
    assert split_long(list(range(10)), 4, 1) == [[0, 1, 2, 3], [3, 4, 5, 6], [6, 7, 8, 9]]
    assert split_long(list(range(5)), 4, 0) == [[0, 1, 2, 3], [4]]
    assert split_long(list(range(5)), 4, 99) == [[0, 1, 2, 3], [1, 2, 3, 4]]
    assert split_long([1, 2], 4, 0) == [[1, 2]]
    assert normalize(np.zeros((1, 3), dtype=np.float32)).tolist() == [[0.0, 0.0, 0.0]]
    hidden = np.arange(12, dtype=np.float32).reshape(1, 3, 4)
    np.testing.assert_allclose(mean_pooling(hidden, np.array([[1, 1, 0]])), [[2, 3, 4, 5]])


def test_tokenizer_builder_is_roberta_style() -> None:
    tok = train_roberta_style_tokenizer()
    enc = tok.encode("hello")
    assert enc.ids[0] == 0 and enc.ids[-1] == 2 and enc.special_tokens_mask[0] == 1
    assert tok.token_to_id("<pad>") == 1 and tok.token_to_id("<unk>") == 3


def test_lazy_export_dependency_missing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def export_model(model: str, output_dir: str | Path, **options) -> Path:
        raise ModuleNotFoundError("No module named 'onnx'", name="onnx")

    _fake_exporter(monkeypatch, export_model)
    with pytest.raises(ExportUnavailableError, match="onnx"):
        Longformer2Vec("org/some-longformer", cache_dir=tmp_path, precision="int8")


def test_default_cuda_falls_back_to_cpu(stub_dir: Path, monkeypatch) -> None:
    """onnxruntime-gpu on a machine whose GPU cannot start: default providers fall back to CPU, and the
    session says why (the encoder chooses the graph again and warns: tests/runtime/test_placement.py)."""
    from longformer2vec import session

    real_create = session.OnnxSession._create

    def create(graph_path, options, providers):
        if session.CUDA in providers:
            raise session.ModelLoadError("CUDA failure")
        return real_create(graph_path, options, providers)

    monkeypatch.setattr(session, "default_providers", lambda: [session.CUDA, session.CPU])
    monkeypatch.setattr(session.OnnxSession, "_create", staticmethod(create))
    runner = session.OnnxSession(stub_graph_path(stub_dir))
    assert runner.providers == [session.CPU] and runner.device == "cpu"
    assert runner.fallback is not None and "CUDAExecutionProvider could not start" in runner.fallback
    with pytest.raises(session.ModelLoadError, match="CUDA failure"):  # explicit choice: no fallback
        session.OnnxSession(stub_graph_path(stub_dir), providers=[session.CUDA, session.CPU])
