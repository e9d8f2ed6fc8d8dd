"""Command line: `export` (needs the export extra), `info` and `embed` (runtime only), `serve` (serve
extra), `encode` (corpus extra)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from .encoder import CPU_MAX_BATCH_TOKENS, DEFAULT_MODEL, GPU_MAX_BATCH_TOKENS
from .errors import CORPUS_INSTALL_HINT, EXPORT_INSTALL_HINT, Longformer2VecError
from .hub import LAYOUTS, PRECISIONS, is_missing_export_dependency
from .manifest import Manifest, format_parity_table, load_model_dir
from .ranking_table import format_ranking_table

_MAX_BATCH_TOKENS_DEFAULT = f"{CPU_MAX_BATCH_TOKENS} on the CPU, {GPU_MAX_BATCH_TOKENS} on a GPU"


def _summary(manifest: Manifest) -> str:
    windows = sorted(set(manifest.attention_windows))
    lines = [
        f"model_id:       {manifest.model_id}",
        f"directory:      {manifest.model_dir}",
        f"precision:      {manifest.precision}",
        f"opset:          {manifest.opset}",
        f"graph:          {manifest.graph_file} ({manifest.node_count} nodes, sha256 {manifest.graph_sha256})",
        f"vector_length:  {manifest.vector_length}",
        f"max_length:     {manifest.max_length}",
        f"pad_multiple:   {manifest.pad_multiple}",
        f"attention:      {len(manifest.attention_windows)} layers, windows {windows}",
        f"layout:         {manifest.layout or 'unrecorded'}",
        f"global tokens:  {'accepted (input global_attention_mask)' if manifest.accepts_global_tokens else 'none'}",
        f"pooling:        {manifest.pooling}",
        f"created:        {manifest.created}",
    ]
    if manifest.versions:
        lines.append("versions:       " + ", ".join(f"{k}={v}" for k, v in manifest.versions.items()))
    return "\n".join(lines)


def _parity_table(parity: object) -> str:
    """The exporter's parity figures, one table per verified graph (fp32, then int8)."""
    if not parity or not isinstance(parity, dict):
        return "parity: (none recorded)"
    return "\n\n".join(
        format_parity_table(rows, label) if isinstance(rows, list) else f"{label}: {json.dumps(rows)}"
        for label, rows in parity.items()
    )


def _export_extra_missing(error: ImportError) -> int:
    print(f"error: exporting needs the export extra ({error}). Run: {EXPORT_INSTALL_HINT}", file=sys.stderr)
    return 2


def _cmd_export(args: argparse.Namespace) -> int:
    try:
        from longformer2vec.export import export_model
    except ImportError as exc:
        return _export_extra_missing(exc)
    from longformer2vec.export import INT8_RECIPES, ParityError

    kwargs: dict[str, object] = {"precision": args.precision}
    if args.opset is not None:
        kwargs["opset"] = args.opset
    if args.layout != "auto":
        kwargs["layout"] = args.layout
    if args.no_global_tokens:
        kwargs["global_tokens"] = False
    if args.int8_recipe != "auto":
        kwargs["int8_recipes"] = [r for r in INT8_RECIPES if r.name == args.int8_recipe]
    try:
        out_dir = export_model(args.model, args.output, **kwargs)
    except ModuleNotFoundError as exc:
        if not is_missing_export_dependency(exc):
            raise
        return _export_extra_missing(exc)
    except (ParityError, FileExistsError, ValueError, OSError) as exc:
        print(f"error: export failed, nothing written to {args.output}: {exc}", file=sys.stderr)
        return 1
    print(_summary(load_model_dir(out_dir)))
    return 0


def _cmd_info(args: argparse.Namespace) -> int:
    manifest = load_model_dir(args.dir, verify_hash=not args.no_verify)
    print(_summary(manifest))
    print(_parity_table(manifest.parity))
    for label, rows in (manifest.raw.get("ranking") or {}).items():
        print("\n" + format_ranking_table(rows, label))
    return 0


def _cmd_embed(args: argparse.Namespace) -> int:
    from .encoder import Longformer2Vec

    model = Longformer2Vec(
        args.model, pooling=args.pooling, global_attention=args.global_attention, normalize=args.normalize
    )
    print(json.dumps(model.bulk_encode(list(args.text))))
    return 0


def _cmd_serve(args: argparse.Namespace) -> int:
    from .serving import SERVE_INSTALL_HINT, is_missing_serve_dependency
    from .serving.config import ServeConfig

    try:
        from .serving.app import serve
    except ImportError as exc:
        if not is_missing_serve_dependency(exc):
            raise
        print(f"error: serving needs the serve extra ({exc}). Run: {SERVE_INSTALL_HINT}", file=sys.stderr)
        return 2
    fields = {k: v for k, v in vars(args).items() if k not in ("command", "func")}
    try:
        config = ServeConfig(**fields)
    except ValueError as exc:  # e.g. --max-queue 0: a usage error, not a traceback
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return serve(config)


def _add_serve_parser(sub: argparse._SubParsersAction) -> None:
    from .serving.config import ServeConfig

    d = ServeConfig(model="")
    p = sub.add_parser(
        "serve",
        help="HTTP server: OpenAI /v1/embeddings, TEI /embed, /health, /metrics (needs the serve extra)",
    )
    p.add_argument("--model", required=True, help="exported model directory or hub id")
    p.add_argument("--host", default=d.host, help=f"bind address (default {d.host})")
    p.add_argument("--port", type=int, default=d.port, help=f"(default {d.port})")
    p.add_argument("--pooling", choices=("mean", "cls"), default=d.pooling)
    p.add_argument("--global-attention", choices=("none", "cls"), default=d.global_attention)
    p.add_argument(
        "--normalize", action="store_true", help="L2-normalize /v1/embeddings vectors (default off)"
    )
    p.add_argument("--threads", type=int, default=d.threads, help="ONNX Runtime threads (default: all cores)")
    ints = (
        ("--batch-size", d.batch_size, "rows per ONNX call inside a merged model call"),
        (
            "--max-batch-requests",
            d.max_batch_requests,
            "requests merged into one model call; 1 = no batching",
        ),
        ("--max-inputs-per-request", d.max_inputs_per_request, "more inputs: 413"),
        ("--max-tokens-per-request", d.max_tokens_per_request, "more tokens: 413"),
        ("--max-queue", d.max_queue, "requests queued or in the model; beyond: 503 + Retry-After"),
        ("--max-body-bytes", d.max_body_bytes, "larger request bodies: 413"),
        ("--retry-after-s", d.retry_after_s, "Retry-After value on 503"),
    )
    for flag, default, text in ints:
        p.add_argument(flag, type=int, default=default, help=f"{text} (default {default})")
    p.add_argument(
        "--max-batch-tokens",
        type=int,
        default=d.max_batch_tokens,
        help="token budget of one merged model call, also the padded tokens per ONNX call "
        f"(default {_MAX_BATCH_TOKENS_DEFAULT})",
    )
    p.add_argument(
        "--max-wait-ms",
        type=float,
        default=d.max_wait_ms,
        help=f"how long a batch waits for more requests (default {d.max_wait_ms})",
    )
    p.add_argument(
        "--graceful-timeout-s",
        type=float,
        default=d.graceful_timeout_s,
        help=f"on SIGTERM, wait this long for requests in flight (default {d.graceful_timeout_s})",
    )
    p.add_argument(
        "--log-level", choices=("critical", "error", "warning", "info", "debug"), default=d.log_level
    )
    p.add_argument("--access-log", action="store_true", help="log every request (default off)")
    p.set_defaults(func=_cmd_serve)


def _corpus_extra_missing(error: ImportError) -> int:
    print(f"error: encode needs the corpus extra ({error}). Run: {CORPUS_INSTALL_HINT}", file=sys.stderr)
    return 2


def _cmd_encode(args: argparse.Namespace) -> int:
    """Stream a corpus file into Parquet or .npy vectors; resumable (see longformer2vec.corpus)."""
    try:
        from . import corpus

        if not args.no_progress:
            import tqdm  # noqa: F401 - checked up front so a missing extra fails before any work
    except ImportError as exc:
        if (exc.name or "").split(".")[0] not in ("pyarrow", "tqdm"):
            raise
        return _corpus_extra_missing(exc)
    from .encoder import Longformer2Vec

    if not Path(args.input).is_file():  # before the (slow) model load
        print(f"error: input {args.input} is not a file", file=sys.stderr)
        return 1
    model = Longformer2Vec(
        args.model,
        pooling=args.pooling,
        global_attention=args.global_attention,
        normalize=args.normalize,
        intra_op_num_threads=args.threads,
        batch_size=args.batch_size,
        max_batch_tokens=args.max_batch_tokens,
    )
    try:
        result = corpus.encode_corpus(
            model,
            args.input,
            args.output,
            fmt=args.format,
            text_field=args.text_field,
            id_field=args.id_field,
            part_size=args.part_size,
            chunk_size=args.chunk_size,
            on_bad_row=args.on_bad_row,
            overwrite=args.overwrite,
            progress=not args.no_progress,
        )
    except KeyboardInterrupt:
        print(f"interrupted; rerun the same command to resume {args.output}", file=sys.stderr)
        return 130
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(result.summary(), file=sys.stderr)
    return 0


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="longformer2vec", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("export", help="export a Hugging Face Longformer to an ONNX model directory")
    p.add_argument(
        "model",
        nargs="?",
        default=DEFAULT_MODEL,
        help=f"hub id or local checkpoint dir (default {DEFAULT_MODEL})",
    )
    p.add_argument("--output", required=True, help="directory to write (replaced only by a finished export)")
    p.add_argument("--precision", choices=PRECISIONS, default="fp32")
    p.add_argument("--opset", type=int, default=None, help="ONNX opset (exporter default: 17)")
    p.add_argument(
        "--int8-recipe",
        choices=("auto", "all-linear", "ffn-out-fp32", "ffn-fp32"),
        default="auto",
        help="int8 only: 'auto' tries all-linear, ffn-out-fp32, ffn-fp32 in turn and keeps the first that "
        "passes parity",
    )
    p.add_argument(
        "--layout",
        choices=("auto", *LAYOUTS),
        default="auto",
        help="graph layout: 'cpu' (attention as one chain per head, faster on CPUs for base-sized models), "
        "'gpu' (fewest nodes); 'fused' (ONNX Runtime's CUDA-only LongformerAttention, one node per layer; "
        "fp32/fp16, exported and verified on a CUDA machine; global tokens must come first); "
        "'auto': gpu for fp16 and for models narrower than 512, else cpu",
    )
    p.add_argument(
        "--no-global-tokens",
        action="store_true",
        help="leave global attention out: the graph takes input_ids and attention_mask only and computes "
        "what VectorHub's encode does, with fewer nodes (faster on short inputs); the runtime then refuses "
        "--global-attention cls. Default: the graph also takes global_attention_mask",
    )
    p.set_defaults(func=_cmd_export)

    p = sub.add_parser("info", help="print a model directory's manifest summary and parity table")
    p.add_argument("dir")
    p.add_argument("--no-verify", action="store_true", help="skip the graph sha256 check")
    p.set_defaults(func=_cmd_info)

    p = sub.add_parser("embed", help="print JSON vectors for TEXT arguments (quick checks)")
    p.add_argument("--model", required=True, help="exported model directory or hub id")
    p.add_argument("--pooling", choices=("mean", "cls"), default="mean")
    p.add_argument("--global-attention", choices=("none", "cls"), default="none")
    p.add_argument("--normalize", action="store_true")
    p.add_argument("text", nargs="+")
    p.set_defaults(func=_cmd_embed)

    _add_serve_parser(sub)
    p = sub.add_parser(
        "encode",
        help="embed a corpus file (JSONL, text, Parquet) into Parquet or .npy; streaming and resumable",
        description="Embed every row of --input into --output. Rerunning an interrupted run resumes it "
        "from its last committed part (kept in OUTPUT.parts/ until the run finishes).",
    )
    p.add_argument("--model", required=True, help="exported model directory or hub id")
    p.add_argument("--input", required=True, help="corpus: .jsonl, .txt (one document per line) or .parquet")
    p.add_argument("--output", required=True, help="vectors: .parquet (id, vector) or .npy (+ .ids.parquet)")
    p.add_argument("--format", choices=("jsonl", "txt", "parquet"), help="input format (default: by suffix)")
    p.add_argument("--text-field", default="text", help="JSONL field / Parquet column with the text")
    p.add_argument(
        "--id-field", default=None, help="JSONL field / Parquet column with the id (default: row number)"
    )
    p.add_argument("--batch-size", type=_positive_int, default=8, help="rows per ONNX run (default 8)")
    p.add_argument(
        "--max-batch-tokens",
        type=_positive_int,
        default=None,
        help=f"padded tokens per ONNX run (default {_MAX_BATCH_TOKENS_DEFAULT})",
    )
    p.add_argument(
        "--part-size",
        type=_positive_int,
        default=1024,
        help="input rows per committed part: the unit of resume and of memory (default 1024)",
    )
    p.add_argument(
        "--chunk-size", type=_positive_int, default=64, help="documents per encode call (default 64)"
    )
    p.add_argument(
        "--on-bad-row",
        choices=("fail", "skip"),
        default="fail",
        help="a row with invalid JSON, a missing or non-string text, or a missing id: stop with its line "
        "number (fail, default) or report it, skip it and list it in OUTPUT.rejects.jsonl (skip)",
    )
    p.add_argument("--overwrite", action="store_true", help="discard earlier output or unfinished parts")
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    p.add_argument("--threads", type=_positive_int, default=None, help="ONNX Runtime intra-op threads")
    p.add_argument("--pooling", choices=("mean", "cls"), default="mean")
    p.add_argument("--global-attention", choices=("none", "cls"), default="none")
    p.add_argument("--normalize", action="store_true")
    p.set_defaults(func=_cmd_encode)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; library errors become a one-line message and exit code 1 (no traceback)."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except Longformer2VecError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
