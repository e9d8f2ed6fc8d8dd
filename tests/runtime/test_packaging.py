"""Packaging: exactly one onnxruntime wheel per distribution, and a loud warning when both are present."""

from __future__ import annotations

import importlib.util
import warnings
from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib")  # Python >= 3.11

ROOT = Path(__file__).resolve().parents[2]


def _load_build_module():
    spec = importlib.util.spec_from_file_location("gpu_build", ROOT / "packaging" / "gpu" / "build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _requirements(project: dict) -> list[str]:
    extras = project.get("optional-dependencies", {})
    return [*project["dependencies"], *(r for reqs in extras.values() for r in reqs)]


def test_cpu_distribution_never_pulls_onnxruntime_gpu() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["name"] == "longformer2vec"
    assert any(r.startswith("onnxruntime>=") for r in project["dependencies"])
    assert not any("onnxruntime-gpu" in r for r in _requirements(project))
    assert not any(
        r.split(">")[0].split("=")[0] in ("torch", "transformers") for r in project["dependencies"]
    )


def test_gpu_distribution_depends_on_onnxruntime_gpu_only() -> None:
    text = _load_build_module().gpu_pyproject((ROOT / "pyproject.toml").read_text())
    project = tomllib.loads(text)["project"]
    assert project["name"] == "longformer2vec-gpu"
    requirements = _requirements(project)
    assert any(r.startswith("onnxruntime-gpu>=") for r in project["dependencies"])
    assert not any(r.startswith(("onnxruntime>=", "longformer2vec[")) for r in requirements)


def test_warns_when_both_onnxruntime_wheels_are_installed(monkeypatch) -> None:
    from longformer2vec import session

    monkeypatch.setattr(session, "onnxruntime_distributions", lambda: ["onnxruntime", "onnxruntime-gpu"])
    with pytest.warns(RuntimeWarning, match="both onnxruntime and onnxruntime-gpu"):
        session.warn_if_onnxruntime_clash()
    monkeypatch.setattr(session, "onnxruntime_distributions", lambda: ["onnxruntime"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        session.warn_if_onnxruntime_clash()
