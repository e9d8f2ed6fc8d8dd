"""Corpus benchmark: docs/s and tokens/s of `longformer2vec encode`, and peak RSS at 1x and 4x corpus size.

    python benchmarks/corpus_throughput.py [--docs 2000] [--base-docs 100] [--base-model DIR] [--small-model DIR]

Generates JSONL corpora of mixed-length documents (word counts log-uniform between --min-words and
--max-words, fixed seed), runs the file CLI on each as a subprocess (the way users run it) and reads the
child's own peak RSS from `os.wait4`. Runs:

* the `small` synthetic geometry (fast) on --docs documents (1x) and 4x as many: docs/s, tokens/s, RSS.
  The 1x/4x RSS pair is the point: streaming keeps it flat as the corpus grows;
* the `base` geometry (longformer-base-4096 shape, random weights, int8) on --base-docs documents of the
  same distribution: the realistic per-document speed on this machine.

Writes the `corpus` section of benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import random
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results_file import cpu_model, write_section

_WORD_TEXT = (
    "the a of and to in is that for on with as by at from this it be are was an or which document "
    "long transformer attention window global token model sequence text vector embedding beach dog "
    "walk quick brown fox jumps over lazy processes thousands tokens scale quadratically length lets "
    "few attend every other enjoy taking along my data corpus search index query result page section "
    "chapter paragraph sentence word meaning context history science report study method analysis "
)
WORDS = _WORD_TEXT.split()


def make_corpus(path: Path, n: int, min_words: int, max_words: int, seed: int) -> int:
    """Write `n` JSONL documents; returns the total word count."""
    rng = random.Random(seed)
    words = 0
    with open(path, "w", encoding="utf-8") as f:
        for i in range(n):
            k = round(math.exp(rng.uniform(math.log(min_words), math.log(max_words))))
            words += k
            text = " ".join(rng.choice(WORDS) for _ in range(k))
            f.write(json.dumps({"id": f"doc-{i}", "text": text}) + "\n")
    return words


def run_cli(model: Path, corpus: Path, output: Path, threads: int) -> dict[str, float]:
    """Run `longformer2vec encode` as a child; wall seconds, its peak RSS and the summary line."""
    cmd = [
        sys.executable, "-m", "longformer2vec", "encode", "--model", str(model), "--input", str(corpus),
        "--output", str(output), "--id-field", "id", "--threads", str(threads), "--no-progress", "--overwrite",
    ]  # fmt: skip
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
    _, stderr = proc.communicate()
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"encode failed ({proc.returncode}):\n{stderr}")
    summary = stderr.strip().splitlines()[-1]
    return {"wall": wall, "summary": summary}  # type: ignore[dict-item]


def measure(model: Path, corpus: Path, output: Path, threads: int) -> dict[str, object]:
    """One measured run in a fresh Python process, so ru_maxrss of RUSAGE_CHILDREN is this run's alone."""
    code = (
        "import json, resource, sys; sys.path.insert(0, sys.argv[1]); import corpus_throughput as b; "
        "r = b.run_cli(*map(__import__('pathlib').Path, sys.argv[2:5]), int(sys.argv[5])); "
        "r['maxrss_kib'] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss; print(json.dumps(r))"
    )
    here = str(Path(__file__).resolve().parent)
    args = [sys.executable, "-c", code, here, str(model), str(corpus), str(output), str(threads)]
    res = subprocess.run(args, capture_output=True, text=True, check=True)
    return json.loads(res.stdout)


def parse_summary(line: str) -> tuple[int, int, float]:
    """(documents, tokens, seconds) from the CLI's last stderr line."""
    head = line.split("this run embedded ")[1]
    docs = int(head.split(" documents")[0])
    tokens = int(head.split("(")[1].split(" tokens")[0])
    seconds = float(head.split(" in ")[1].split("s:")[0])
    return docs, tokens, seconds


def ensure_small_model(work: Path) -> Path:
    out = work / "small_int8"
    if not (out / "manifest.json").exists():
        hf = work / "small_hf"
        subprocess.run(
            [sys.executable, "-m", "longformer2vec.export.synthetic", "small", str(hf)], check=True
        )
        cmd = [sys.executable, "-m", "longformer2vec", "export", str(hf), "--output", str(out)]
        subprocess.run([*cmd, "--precision", "int8"], check=True, capture_output=True)
    return out


def load_average() -> float:
    return os.getloadavg()[0]


def wait_for_quiet(limit_s: float = 600, threshold: float = 1.5) -> float:
    """Other jobs share these cores: wait (up to limit_s) for the 1-minute load to drop; return it."""
    deadline = time.time() + limit_s
    while load_average() > threshold and time.time() < deadline:
        time.sleep(15)
    return load_average()


def versions() -> str:
    from importlib.metadata import version

    names = ("longformer2vec", "onnxruntime", "numpy", "tokenizers", "pyarrow")
    return ", ".join(f"{n} {version(n)}" for n in names) + f", Python {platform.python_version()}"


def row(label: str, docs_in: int, words: int, result: dict[str, object]) -> str:
    docs, tokens, seconds = parse_summary(str(result["summary"]))
    assert docs == docs_in, (docs, docs_in)
    rss = int(result["maxrss_kib"]) / 1024  # type: ignore[call-overload]
    wall = float(result["wall"])  # type: ignore[arg-type]
    return (
        f"| {label} | {docs:,} | {words:,} | {tokens:,} | {seconds:.1f} | {docs / seconds:.2f} | "
        f"{tokens / seconds:,.0f} | {wall:.1f} | {rss:,.0f} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=2000, help="1x corpus size for the small model")
    parser.add_argument("--base-docs", type=int, default=100, help="documents for the base model (0: skip)")
    parser.add_argument("--min-words", type=int, default=20)
    parser.add_argument("--max-words", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--base-model", type=Path, default=Path("/tmp/lf/base_int8_v2"))
    parser.add_argument("--small-model", type=Path, default=None, help="default: export one into --work")
    parser.add_argument("--work", type=Path, default=Path("/tmp/longformer2vec_corpus_bench"))
    parser.add_argument("--no-write", action="store_true", help="print the section, leave RESULTS.md alone")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    small = args.small_model or ensure_small_model(args.work)

    corpora = {}
    for label, n, seed in (("1x", args.docs, 1), ("4x", 4 * args.docs, 2), ("base", args.base_docs, 3)):
        if n:
            path = args.work / f"corpus_{label}.jsonl"
            corpora[label] = (path, n, make_corpus(path, n, args.min_words, args.max_words, seed))

    load_before = wait_for_quiet()
    rows, loads = [], [f"{load_before:.2f}"]
    for label in ("1x", "4x"):
        path, n, words = corpora[label]
        res = measure(small, path, args.work / f"out_{label}.parquet", args.threads)
        loads.append(f"{load_average():.2f}")
        rows.append(row(f"small int8, {label}", n, words, res))
        print(rows[-1], flush=True)
    if "base" in corpora:
        path, n, words = corpora["base"]
        res = measure(args.base_model, path, args.work / "out_base.parquet", args.threads)
        loads.append(f"{load_average():.2f}")
        rows.append(row("base int8", n, words, res))
        print(rows[-1], flush=True)

    command = "python benchmarks/corpus_throughput.py " + " ".join(sys.argv[1:])
    body = f"""## Corpus: `longformer2vec encode` throughput and memory

Written by `benchmarks/corpus_throughput.py`. Command: `{command.strip()}`

Machine: {os.cpu_count()} cores, {cpu_model()}; {versions()}; ONNX Runtime intra-op threads {args.threads};
CLI defaults otherwise (--batch-size 8, --chunk-size 64, --part-size 1024), JSONL in, Parquet out.
1-minute load average before / after each run: {" / ".join(loads)} (other jobs share these cores).

Corpora: JSONL documents of log-uniform word counts from {args.min_words} to {args.max_words} words
(fixed seeds), words from a small English list. Models have random weights: `small` is the synthetic
small geometry (hidden 64, 2 layers, 512 positions, so long documents become several windows), `base`
the longformer-base-4096 geometry (hidden 768, 12 layers, 4096 positions). Both use the synthetic
~400-token vocabulary, so tokens per word run higher than with the real tokenizer. "Encode s" is the
CLI's own timing of the embedding loop; "wall s" includes Python start-up, model load and the final
combine of the parts. "Peak RSS" is the CLI process's `ru_maxrss`.

| run | documents | words | tokens | encode s | docs/s | tokens/s | wall s | peak RSS MiB |
|---|---:|---:|---:|---:|---:|---:|---:|---:|
{chr(10).join(rows)}
"""
    print(body)
    if not args.no_write:
        print(f"wrote {write_section('corpus', body)}")


if __name__ == "__main__":
    main()
