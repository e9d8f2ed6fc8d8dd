"""What every cpu_bench worker shares: the inputs file, the eager reference, timing, memory, cosine.

The driver writes one ``inputs.npz`` (token ids per length, cut from real-looking text) and the eager
worker writes ``reference.npz`` (its pooled vectors); every other path runs the same ids in its own
process and reports its pooled cosine against that reference, so accuracy and speed come from one run.
"""

from __future__ import annotations

import math
import os
import platform
import resource
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from results_file import cpu_model  # benchmarks/ is on sys.path: scripts run from there


def rss_mb() -> float:
    """This process's peak RSS (VmHWM: per address space, so not inherited from the parent the way
    getrusage's ru_maxrss is across fork + exec)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def stats(seconds: list[float]) -> dict[str, float]:
    ms = [s * 1000 for s in seconds]
    return {"median_ms": statistics.median(ms), "min_ms": min(ms), "max_ms": max(ms), "runs": len(ms)}


def repeats(length: int, base: int) -> int:
    return max(3, base if length <= 1024 else base // 2)


def timed(fn: Callable, *args) -> float:
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start


def time_at(fn: Callable[[], object], length: int, base_repeats: int) -> dict[str, float]:
    """One warm-up call, then the timed ones."""
    fn()
    return stats([timed(fn) for _ in range(repeats(length, base_repeats))])


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a, np.float64).ravel(), np.asarray(b, np.float64).ravel()
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def masked_mean(hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Mean over the real tokens (mask 1) of ``[batch, sequence, hidden]`` states."""
    weights = mask[..., None].astype(np.float64)
    return (hidden * weights).sum(1) / weights.sum(1)


# --------------------------------------------------------------------------- inputs and reference


def token_stream(tokenizer_path: Path) -> list[int]:
    """Content token ids of a long, real-looking English text (no specials)."""
    from tokenizers import Tokenizer

    from longformer2vec.export.verify import VERIFICATION_TEXT

    tok = Tokenizer.from_file(str(tokenizer_path))
    tok.no_truncation()
    return tok.encode(VERIFICATION_TEXT * 60, add_special_tokens=False).ids


def write_inputs(path: Path, tokenizer_path: Path, lengths: list[int], calibration: int) -> None:
    """Per length L: ``test_L`` [1, L] (the timed, compared input) and ``calib_L`` [calibration, L]
    (what static quantization may calibrate on), each ``<s> ... </s>`` around text from different
    offsets of the stream, so the compared input is never a calibration sample."""
    from tokenizers import Tokenizer

    stream = token_stream(tokenizer_path)
    tok = Tokenizer.from_file(str(tokenizer_path))
    bos, eos = tok.token_to_id("<s>"), tok.token_to_id("</s>")
    bos = tok.token_to_id("[CLS]") if bos is None else bos
    eos = tok.token_to_id("[SEP]") if eos is None else eos
    rng = np.random.default_rng(0)
    arrays = {}
    for length in lengths:
        if len(stream) < length * 2:
            raise ValueError(f"the text stream has {len(stream)} tokens, too few for length {length}")
        starts = rng.choice(len(stream) - length, size=calibration + 1, replace=False)
        rows = np.array([[bos, *stream[s : s + length - 2], eos] for s in starts], dtype=np.int64)
        arrays[f"test_{length}"], arrays[f"calib_{length}"] = rows[:1], rows[1:]
    np.savez(path, **arrays)


def load_inputs(path: str | Path) -> dict[str, np.ndarray]:
    with np.load(path) as data:
        return {k: data[k] for k in data.files}


def load_reference(path: str | Path | None) -> dict[str, np.ndarray]:
    if not path or not Path(path).exists():
        return {}
    with np.load(path) as data:
        return {k: data[k] for k in data.files}


def cosines(vectors: dict[int, np.ndarray], reference: dict[str, np.ndarray]) -> dict[str, float]:
    """Pooled cosine against eager fp32 per length (lengths eager did not run are left out)."""
    return {
        str(n): cosine(v, reference[f"pooled_{n}"]) for n, v in vectors.items() if f"pooled_{n}" in reference
    }


def report(
    startup: float,
    latency: dict,
    rss_latency: float,
    vectors: dict[int, np.ndarray],
    reference: dict[str, np.ndarray],
    **extra,
) -> dict:
    return {
        "startup_s": startup,
        "latency": {str(k): v for k, v in latency.items()},
        "pooled_cosine": cosines(vectors, reference),
        "peak_rss_mb_latency": rss_latency,
        "peak_rss_mb": rss_mb(),
        **extra,
    }


# --------------------------------------------------------------------------- machine


def loadavg() -> str:
    return " / ".join(f"{x:.2f}" for x in os.getloadavg())


def machine() -> str:
    flags = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    isa = ", ".join(f for f in ("amx_tile", "avx512_bf16", "avx512_vnni", "avx512f", "avx2") if f in flags)
    return f"{cpu_model()}, {os.cpu_count()} logical cores ({isa or '?'})"


def versions() -> dict[str, str]:
    from importlib import metadata

    out = {"python": platform.python_version()}
    for name in ("torch", "transformers", "onnxruntime", "tokenizers", "openvino", "nncf"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def log_uniform_lengths(rng: np.random.Generator, docs: int, shortest: int, longest: int) -> list[int]:
    return [round(math.exp(rng.uniform(math.log(shortest), math.log(longest)))) for _ in range(docs)]
