"""The device is decided once, from the providers the session really got, and the graph from it."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import pytest

from longformer2vec import Longformer2Vec
from longformer2vec import session as session_module
from tests.helpers_runtime import write_stub_model_dir

CUDA, CPU = "CUDAExecutionProvider", "CPUExecutionProvider"


@pytest.fixture(scope="module")
def three_graphs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_stub_model_dir(
        tmp_path_factory.mktemp("place") / "m", precisions=("fp32", "int8", "fp16"), global_tokens=False
    )


def _ours(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "longformer2vec" and r.levelno >= logging.WARNING]


def _cpu_only_onnxruntime() -> bool:
    return CUDA not in session_module.ort.get_available_providers()


@pytest.mark.skipif(not _cpu_only_onnxruntime(), reason="needs the CPU build of onnxruntime")
def test_cuda_asked_of_a_cpu_onnxruntime_runs_int8(three_graphs: Path, caplog) -> None:
    """providers=[CUDA, CPU] on the CPU build: the CPU's graph (int8), one warning naming both."""
    with (
        caplog.at_level(logging.WARNING, logger="longformer2vec"),
        warnings.catch_warnings(record=True) as ws,
    ):
        warnings.simplefilter("always")
        model = Longformer2Vec(str(three_graphs), providers=[CUDA, CPU])
    assert model.providers == [CPU] and model.precision == "int8"
    (record,) = _ours(caplog)
    message = record.getMessage()
    assert CUDA in message and CPU in message and "int8" in message, message
    assert not [w for w in ws if "provider" in str(w.message)]  # ORT's own warning is not repeated
    # nothing to warn about when the CPU is what was asked
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="longformer2vec"):
        assert Longformer2Vec(str(three_graphs), providers=[CPU]).precision == "int8"
    assert not _ours(caplog)


@pytest.mark.parametrize(
    ("precisions", "for_cuda"), [(("fp32", "int8", "fp16"), "fp16"), (("fp32", "int8"), "fp32")]
)
def test_gpu_wheel_without_a_device_runs_int8(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog, precisions: tuple[str, ...], for_cuda: str
) -> None:
    """onnxruntime-gpu whose CUDA cannot start (simulated: this build claims CUDA, and the session it
    makes runs on the CPU, as ORT does when the CUDA provider fails to load): the graph chosen for CUDA
    is replaced by int8, with one warning naming both providers and both graphs."""
    d = write_stub_model_dir(tmp_path / "m", precisions=precisions, global_tokens=False)
    monkeypatch.setattr(session_module.ort, "get_available_providers", lambda: [CUDA, CPU])
    opened: list[str] = []
    real_create = session_module.OnnxSession._create

    def create(graph_path, options, providers):
        opened.append(Path(graph_path).name)
        return real_create(graph_path, options, [p for p in providers if p != CUDA] or [CPU])

    monkeypatch.setattr(session_module.OnnxSession, "_create", staticmethod(create))
    with caplog.at_level(logging.WARNING, logger="longformer2vec"):
        model = Longformer2Vec(str(d))
    assert model.providers == [CPU] and model.precision == "int8"
    assert opened == [f"model_{for_cuda}.onnx" if for_cuda != "fp32" else "model.onnx", "model_int8.onnx"]
    (record,) = _ours(caplog)
    message = record.getMessage()
    assert CUDA in message and CPU in message and "int8" in message and for_cuda in message, message
    assert model.encode("dog") == Longformer2Vec(str(d), providers=[CPU]).encode("dog")


def test_gpu_wheel_whose_cuda_raises_runs_int8(three_graphs: Path, monkeypatch, caplog) -> None:
    """The other way CUDA fails to start: the session creation raises; the default falls back too."""
    monkeypatch.setattr(session_module.ort, "get_available_providers", lambda: [CUDA, CPU])
    real_create = session_module.OnnxSession._create

    def create(graph_path, options, providers):
        if CUDA in providers:
            raise session_module.ModelLoadError("CUDA failure: no device")
        return real_create(graph_path, options, providers)

    monkeypatch.setattr(session_module.OnnxSession, "_create", staticmethod(create))
    with caplog.at_level(logging.WARNING, logger="longformer2vec"):
        model = Longformer2Vec(str(three_graphs))
    assert model.providers == [CPU] and model.precision == "int8"
    (record,) = _ours(caplog)
    assert "no device" in record.getMessage() and "fp16" in record.getMessage()


def test_explicit_precision_is_kept_on_fallback(three_graphs: Path, monkeypatch, caplog) -> None:
    monkeypatch.setattr(session_module.ort, "get_available_providers", lambda: [CUDA, CPU])
    real_create = session_module.OnnxSession._create
    monkeypatch.setattr(
        session_module.OnnxSession,
        "_create",
        staticmethod(lambda g, o, p: real_create(g, o, [x for x in p if x != CUDA] or [CPU])),
    )
    with caplog.at_level(logging.WARNING, logger="longformer2vec"):
        model = Longformer2Vec(str(three_graphs), precision="fp16")
    assert model.precision == "fp16" and model.providers == [CPU]
    assert len(_ours(caplog)) == 1
