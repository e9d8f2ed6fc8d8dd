"""Command line: `export` (needs the export extra), `info` and `embed` (runtime only), `serve` (serve extra)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from .encoder import DEFAULT_MODEL
from .errors import EXPORT_INSTALL_HINT, Longformer2VecError
from .hub import is_missing_export_dependency
from .manifest import Manifest, format_parity_table, load_model_dir


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
        ("--max-batch-tokens", d.max_batch_tokens, "token budget of one merged model call"),
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
    p.add_argument("--precision", choices=("fp32", "int8", "fp16"), default="fp32")
    p.add_argument("--opset", type=int, default=None, help="ONNX opset (exporter default: 17)")
    p.add_argument(
        "--int8-recipe",
        choices=("auto", "all-linear", "ffn-out-fp32", "ffn-fp32"),
        default="auto",
        help="int8 only: 'auto' tries all-linear, ffn-out-fp32, ffn-fp32 in turn and keeps the first that "
        "passes parity",
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
