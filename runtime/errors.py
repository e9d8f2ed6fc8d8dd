"""Exception hierarchy: one base class so callers (and the CLI) can catch every runtime failure."""

from __future__ import annotations


class Longformer2VecError(Exception):
    """Base class for all errors raised by longformer2vec."""


class ModelLoadError(Longformer2VecError):
    """A model directory is missing, incomplete or corrupt; the message names the offending path."""


class ParityError(Longformer2VecError, RuntimeError):
    """An exported graph disagrees with PyTorch on at least one verification case; nothing was written."""


class CorpusError(Longformer2VecError):
    """A corpus run cannot go on: bad row under `fail`, mismatched resume state, unreadable input or output."""


class ExportUnavailableError(Longformer2VecError):
    """A hub model needs exporting but the optional export dependencies (torch, transformers) are missing."""

    def __init__(self, model: str, reason: str = "", missing_dir: str | None = None) -> None:
        from .extras import install_hint

        self.model = model
        detail = f" ({reason})" if reason else ""
        where = f" (there is no directory {missing_dir})" if missing_dir else ""
        super().__init__(
            f"Model {model!r} has no exported ONNX directory{where} and the export extra is not installed"
            f"{detail}. "
            f"Either {install_hint('export')}, or export elsewhere with "
            f'`longformer2vec export {model} --output DIR` and load it with Longformer2Vec("DIR").'
        )
