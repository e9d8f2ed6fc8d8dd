"""Model directory validation, model resolution/cache, cards and numpy helpers."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from longformer2vec import ExportUnavailableError, Longformer2Vec, ModelLoadError, load_model_dir, parse_card
from longformer2vec.common import mean_pooling, normalize, pad_batch, split_long
from longformer2vec.hub import cache_key, default_cache_dir, resolve_model
from longformer2vec.models import card_path, default_card
from tests.helpers_runtime import train_roberta_style_tokenizer, write_stub_model_dir


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
    with open(d / "model.onnx", "ab") as fh:
        fh.write(b"\0")
    with pytest.raises(ModelLoadError, match=r"sha256 mismatch.*" + str(d / "model.onnx")):
        Longformer2Vec(str(d))
    assert load_model_dir(d, verify_hash=False).model_id == "stub/longformer-tiny"


def test_missing_graph_file(stub_dir: Path, tmp_path: Path) -> None:
    d = _copy(stub_dir, tmp_path)
    (d / "model.onnx").unlink()
    with pytest.raises(ModelLoadError, match=str(d / "model.onnx")):
        load_model_dir(d)


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
    assert cache_key("allenai/longformer-base-4096", "int8") == "allenai--longformer-base-4096-int8"
    target = tmp_path / "cache" / "allenai--longformer-base-4096-int8"
    shutil.copytree(stub_dir, target)
    # CPU-only providers -> default precision int8 -> the int8 cache entry
    m = Longformer2Vec("allenai/longformer-base-4096", providers=["CPUExecutionProvider"])
    assert m.model_dir == target
    assert resolve_model(str(stub_dir), "fp32") == stub_dir  # a model dir is used as is


def test_xdg_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("LONGFORMER2VEC_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert default_cache_dir() == tmp_path / "longformer2vec"


def test_export_unavailable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "longformer2vec.export", None)  # import -> ImportError
    with pytest.raises(ExportUnavailableError) as info:
        Longformer2Vec("allenai/longformer-base-4096", cache_dir=tmp_path, precision="fp32")
    msg = str(info.value)
    assert "pip install 'longformer2vec[export]'" in msg
    assert "longformer2vec export allenai/longformer-base-4096 --output DIR" in msg


def test_export_is_called_into_cache(tmp_path: Path, stub_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import types

    calls: list[tuple[str, Path, str, bool]] = []

    def export_model(
        model: str, output_dir: str | Path, precision: str = "fp32", global_tokens: bool = True
    ) -> Path:
        """The stub directory, its manifest saying what a graph with(out) global tokens takes."""
        calls.append((model, Path(output_dir), precision, global_tokens))
        shutil.copytree(stub_dir, output_dir)
        manifest = json.loads((stub_dir / "manifest.json").read_text())
        manifest["inputs"] = ["input_ids", "attention_mask"] + ["global_attention_mask"] * global_tokens
        (Path(output_dir) / "manifest.json").write_text(json.dumps(manifest))
        return Path(output_dir)

    monkeypatch.setitem(
        sys.modules, "longformer2vec.export", types.SimpleNamespace(export_model=export_model)
    )
    plain = tmp_path / "org--some-longformer-fp32"
    m = Longformer2Vec("org/some-longformer", cache_dir=tmp_path, precision="fp32")
    assert calls == [("org/some-longformer", plain, "fp32", False)]  # no global tokens: fewer nodes
    assert m.model_dir == plain and not m.manifest.accepts_global_tokens
    Longformer2Vec("org/some-longformer", cache_dir=tmp_path, precision="fp32")
    assert len(calls) == 1  # second load hits the cache

    # global attention needs a graph that takes global tokens: exported next to the plain one
    m = Longformer2Vec("org/some-longformer", cache_dir=tmp_path, precision="fp32", global_attention="cls")
    assert calls[1:] == [("org/some-longformer", tmp_path / "org--some-longformer-fp32-global", "fp32", True)]
    assert m.manifest.accepts_global_tokens
    Longformer2Vec("org/some-longformer", cache_dir=tmp_path, precision="fp32", global_attention="cls")
    assert len(calls) == 2
    with pytest.raises(ModelLoadError, match="exported without global tokens"):
        Longformer2Vec(plain, global_attention="cls")  # an exported directory is used as it is

    # an earlier version's cache holds a graph that takes them under the plain name: reused for both
    old_cache = tmp_path / "old"
    shutil.copytree(stub_dir, old_cache / "org--some-longformer-fp32")
    for setting in ("cls", "none"):
        m = Longformer2Vec(
            "org/some-longformer", cache_dir=old_cache, precision="fp32", global_attention=setting
        )
        assert m.model_dir == old_cache / "org--some-longformer-fp32"
    assert len(calls) == 2


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
    assert card.installation == "pip install longformer2vec"
    assert card.paper == "https://arxiv.org/abs/2004.05150" and card.release_date == "2020-04-10"
    assert card.short_description and "## Description" in card.description
    assert card_path("unknown/model") is None
    assert parse_card(default_card("unknown/model", 7)).vector_length == "7 (default)"


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
    import types

    def export_model(model: str, output_dir: str | Path, **options) -> Path:
        raise ModuleNotFoundError("No module named 'onnx'", name="onnx")

    monkeypatch.setitem(
        sys.modules, "longformer2vec.export", types.SimpleNamespace(export_model=export_model)
    )
    with pytest.raises(ExportUnavailableError, match="onnx"):
        Longformer2Vec("org/some-longformer", cache_dir=tmp_path, precision="int8")


def test_default_cuda_falls_back_to_cpu_loudly(stub_dir: Path, monkeypatch) -> None:
    """onnxruntime-gpu on a machine whose GPU cannot start: default providers fall back to CPU."""
    from longformer2vec import session

    real_create = session.OnnxSession._create

    def create(graph_path, options, providers):
        if session.CUDA in providers:
            raise session.ModelLoadError("CUDA failure")
        return real_create(graph_path, options, providers)

    monkeypatch.setattr(session, "default_providers", lambda: [session.CUDA, session.CPU])
    monkeypatch.setattr(session.OnnxSession, "_create", staticmethod(create))
    with pytest.warns(RuntimeWarning, match="running .* on the CPU"):
        runner = session.OnnxSession(stub_dir / "model.onnx")
    assert runner.providers == [session.CPU]
    with pytest.raises(session.ModelLoadError, match="CUDA failure"):  # explicit choice: no fallback
        session.OnnxSession(stub_dir / "model.onnx", providers=[session.CUDA, session.CPU])
