"""Command line: `export` (needs the export extra), `info` and `embed` (runtime only), `serve` (serve
extra), `encode` (corpus extra)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from .batching import INT8_BATCHED_ROW_TOKENS
from .cli_options import add_model_arguments, model_from_args, positive_int
from .contract import (
    DEFAULT_MODEL,
    INT8_ACTIVATIONS,
    LAYOUTS,
    PRECISIONS,
    load_model_dir,
)
from .describe import parity_tables, summary
from .document_graph import document_graphs, verify_document_graph
from .encoder import CPU_MAX_BATCH_TOKENS, GPU_MAX_BATCH_TOKENS
from .errors import Longformer2VecError
from .extras import is_missing, missing_message
from .options import OptionError
from .text import check_text

_MAX_BATCH_TOKENS_DEFAULT = f"{CPU_MAX_BATCH_TOKENS} on the CPU, {GPU_MAX_BATCH_TOKENS} on a GPU"


def _cmd_export(args: argparse.Namespace) -> int:
    try:
        from longformer2vec.export import export_model
    except ImportError as exc:  # the export package itself, or torch / transformers / onnx under it
        print(f"error: {missing_message(exc, 'exporting', 'export')}", file=sys.stderr)
        return 2
    from longformer2vec.export import INT8_RECIPES, ParityError

    kwargs: dict[str, object] = {"precision": args.precision, "global_tokens": args.global_tokens}
    if args.document_graph:
        kwargs["document_graph"] = True
    if args.opset is not None:
        kwargs["opset"] = args.opset
    if args.layout != "auto":
        kwargs["layout"] = args.layout
    if args.int8_recipe != "auto" or args.int8_activations != "by-length":
        kwargs["int8_recipes"] = [
            dataclasses.replace(r, activations=args.int8_activations)
            for r in INT8_RECIPES
            if args.int8_recipe in ("auto", r.name)
        ]
    try:
        out_dir = export_model(args.model, args.output, **kwargs)
    except ModuleNotFoundError as exc:
        if not is_missing(exc, "export"):
            raise
        print(f"error: {missing_message(exc, 'exporting', 'export')}", file=sys.stderr)
        return 2
    except (ParityError, FileExistsError, ValueError, OSError) as exc:
        print(f"error: export failed, nothing written to {args.output}: {exc}", file=sys.stderr)
        return 1
    print(summary(load_model_dir(out_dir, verify_hash=False)))
    return 0


def _cmd_info(args: argparse.Namespace) -> int:
    manifest = load_model_dir(args.dir, verify_hash=not args.no_verify)
    if not args.no_verify:
        for graph in document_graphs(manifest):
            verify_document_graph(graph, manifest)
    print(summary(manifest))
    print(parity_tables(manifest))
    return 0


def _cmd_embed(args: argparse.Namespace) -> int:
    try:
        texts = [check_text(text, f"text argument {i}") for i, text in enumerate(args.text, start=1)]
    except ValueError as exc:  # undecodable bytes in argv arrive as lone surrogates
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(model_from_args(args).bulk_encode(texts)))
    return 0


def _cmd_serve(args: argparse.Namespace) -> int:
    """Every argument is checked (exit 2, one line), the model resolved to an exported directory (exit 1)
    and the port bound (exit 1) before the model loads."""
    import os

    from .hub import looks_like_hub_id, resolve_model
    from .placement import expected_device, preferred_precision
    from .serving.config import ServeConfig, api_key_from

    try:
        from .serving.app import serve
    except ImportError as exc:
        if not is_missing(exc, "serve"):
            raise
        print(f"error: {missing_message(exc, 'serving', 'serve')}", file=sys.stderr)
        return 2
    fields = {k: v for k, v in vars(args).items() if k not in ("command", "func")}
    fields["api_key"] = api_key_from(args.api_key, os.environ)
    try:
        config = ServeConfig(**fields)
    except ValueError as exc:  # e.g. --max-queue 0 or --port 99999: a usage error, not a traceback
        print(f"error: {exc}", file=sys.stderr)
        return 2
    model = config.model
    if not model.strip() or (not Path(model).expanduser().exists() and not looks_like_hub_id(model)):
        print(f"error: --model {model!r}: no such directory, and not a hub id", file=sys.stderr)
        return 2
    # A name that is no export (a damaged directory, a hub id out of reach) fails here, before the
    # server listens, instead of answering 'loading' while it fails in the background.
    directory = resolve_model(
        config.model,
        precision=lambda: config.precision or preferred_precision(expected_device(None)),
        global_tokens=config.global_attention != "none",
    )
    return serve(dataclasses.replace(config, model=str(directory)))


def _one_line_errors(parser: argparse.ArgumentParser) -> None:
    """A usage error as one `error:` line (exit 2), not the whole usage block: `serve` has many flags."""

    def error(message: str) -> NoReturn:
        parser.exit(2, f"error: {message} (see {parser.prog} --help)\n")

    parser.error = error  # type: ignore[method-assign]


def _add_serve_parser(sub: argparse._SubParsersAction) -> None:
    from .serving.config import API_KEY_ENV, ServeConfig

    d = ServeConfig(model="")
    p = sub.add_parser(
        "serve",
        help="HTTP server: OpenAI /v1/embeddings and /v1/models, TEI /embed and /info, /health, /metrics "
        "(needs the serve extra)",
    )
    _one_line_errors(p)
    add_model_arguments(
        p, "L2-normalize /v1/embeddings vectors (/embed has its own field)", count=int, spin=d.spin
    )
    p.add_argument(
        "--served-model-name",
        default=None,
        help="the model's name in /v1/models, responses and /info (default: the hub id for hub models, "
        "else the export directory's name)",
    )
    p.add_argument("--host", default=d.host, help=f"bind address (default {d.host})")
    p.add_argument("--port", type=int, default=d.port, help=f"(default {d.port})")
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
        help="how long a batch waits for the next request; each arrival restarts the wait, for at most "
        f"as long as the previous model call took (default {d.max_wait_ms})",
    )
    p.add_argument(
        "--graceful-timeout-s",
        type=float,
        default=d.graceful_timeout_s,
        help="on SIGTERM, wait this long for requests in flight; those still running then get 503 "
        f"(default {d.graceful_timeout_s})",
    )
    p.add_argument(
        "--log-level", choices=("critical", "error", "warning", "info", "debug"), default=d.log_level
    )
    p.add_argument("--access-log", action="store_true", help="log every request (default off)")
    p.add_argument(
        "--api-key",
        metavar="KEY",
        default=None,
        help="require 'Authorization: Bearer KEY' on every route but /health and /metrics (default: the "
        f"{API_KEY_ENV} environment variable, which keeps the key out of the process list; neither set: "
        "no key)",
    )
    p.add_argument(
        "--metrics-require-key",
        action="store_true",
        help="/metrics needs the API key too (default: open, like /health, for Prometheus scrapers)",
    )
    p.set_defaults(func=_cmd_serve)


def _cmd_encode(args: argparse.Namespace) -> int:
    """Stream a corpus file into Parquet or .npy vectors; resumable (see longformer2vec.corpus)."""
    try:
        from . import corpus

        if args.progress:
            import tqdm  # noqa: F401 - checked up front so a missing extra fails before any work
    except ImportError as exc:
        if not is_missing(exc, "corpus"):
            raise
        print(f"error: {missing_message(exc, 'encode', 'corpus')}", file=sys.stderr)
        return 2
    options = corpus.EncodeOptions(
        **{field.name: getattr(args, field.name) for field in dataclasses.fields(corpus.EncodeOptions)}
    )
    corpus.check_job(args.input, args.output, options)  # bad paths fail before the (slow) model load
    model = model_from_args(args)
    try:
        result = corpus.encode_corpus(model, args.input, args.output, **dataclasses.asdict(options))
    except KeyboardInterrupt:
        if any(corpus.parts_dir(Path(args.output)).glob("part-*.parquet")):
            print(f"interrupted; rerun the same command to resume {args.output}", file=sys.stderr)
        else:
            print("interrupted before any part was committed; nothing was kept", file=sys.stderr)
        return 130
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(result.summary(), file=sys.stderr)
    return 0


def _field_list(text: str) -> tuple[str, ...]:
    names = tuple(name.strip() for name in text.split(","))
    if not all(names):
        raise argparse.ArgumentTypeError(f"comma-separated field names, got {text!r}")
    return names


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a number of seconds >= 0, got {text!r}")
    return value


def _precision_list(text: str) -> str:
    names = [name.strip() for name in text.split(",") if name.strip()]
    bad = [name for name in names if name not in PRECISIONS]
    if bad or not names:
        raise argparse.ArgumentTypeError(
            f"choose from {', '.join(PRECISIONS)} (comma-separated), got {text!r}"
        )
    return ",".join(names)


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
    p.add_argument(
        "--precision",
        type=_precision_list,
        default="fp32",
        help=f"one or more of {', '.join(PRECISIONS)}, comma-separated (e.g. fp32,int8): one graph each "
        "(default fp32). Exporting into an existing export of the same model adds the graphs to it",
    )
    p.add_argument("--opset", type=int, default=None, help="ONNX opset (exporter default: 17)")
    p.add_argument(
        "--int8-recipe",
        choices=("auto", "all-linear", "ffn-out-fp32", "ffn-fp32"),
        default="auto",
        help="int8 only: 'auto' tries all-linear, ffn-out-fp32, ffn-fp32 in turn and keeps the first that "
        "passes parity",
    )
    p.add_argument(
        "--int8-activations",
        choices=INT8_ACTIVATIONS,
        default="by-length",
        help="int8 only: 'by-length' (default) scales each token's activations on its own on inputs up to "
        f"{INT8_BATCHED_ROW_TOKENS} tokens wide, so short texts share ONNX calls with vectors independent of their "
        "batch, and once per call above, where each row runs alone; 'per-tensor' scales once per call at "
        "every width (every row alone); 'per-token' scales per token at every width (slower on long texts)",
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
        "--global-tokens",
        action="store_true",
        help="also write graphs that take global_attention_mask (onnx/model_global*.onnx), beside the default "
        "ones, for --global-attention cls. Default: graphs take input_ids and attention_mask only",
    )
    p.add_argument("--no-global-tokens", action="store_true", help=argparse.SUPPRESS)  # the default now
    p.add_argument(
        "--document-graph",
        action="store_true",
        help="also write, beside each graph, a document graph (onnx/model_document*.onnx): input_ids [1, n] "
        "of any length in, document_embedding out, long-text windows inside the graph, for ONNX Runtime in "
        "any language; weights read from the graph's own file, not copied",
    )
    p.set_defaults(func=_cmd_export)

    p = sub.add_parser("info", help="print a model directory's manifest summary and parity table")
    p.add_argument("dir")
    p.add_argument("--no-verify", action="store_true", help="skip the graph sha256 check")
    p.set_defaults(func=_cmd_info)

    p = sub.add_parser("embed", help="print JSON vectors for TEXT arguments (quick checks)")
    add_model_arguments(p)
    p.add_argument("text", nargs="+")
    p.set_defaults(func=_cmd_embed)

    _add_serve_parser(sub)
    p = sub.add_parser(
        "encode",
        help="embed a corpus file (JSONL, text, Parquet) into Parquet or .npy; streaming and resumable",
        description="Embed every row of --input into --output. Rerunning an interrupted run resumes it "
        "from its last committed part (kept in OUTPUT.parts/ until the run finishes).",
    )
    add_model_arguments(p)
    p.add_argument("--input", required=True, help="corpus: .jsonl, .txt (one document per line) or .parquet")
    p.add_argument("--output", required=True, help="vectors: .parquet (id, vector) or .npy (+ .ids.parquet)")
    p.add_argument(
        "--format", dest="fmt", choices=("jsonl", "txt", "parquet"), help="input format (default: by suffix)"
    )
    p.add_argument(
        "--keep-fields",
        type=_field_list,
        default=(),
        help="input fields (JSONL) or columns (Parquet) to copy into the output beside id and vector, "
        "comma-separated, e.g. text,title (Parquet output only)",
    )
    p.add_argument("--text-field", default="text", help="JSONL field / Parquet column with the text")
    p.add_argument(
        "--id-field", default=None, help="JSONL field / Parquet column with the id (default: row number)"
    )
    p.add_argument("--batch-size", type=int, default=8, help="rows per ONNX run (default 8)")
    p.add_argument(
        "--max-batch-tokens",
        type=int,
        default=None,
        help=f"padded tokens per ONNX run (default {_MAX_BATCH_TOKENS_DEFAULT})",
    )
    p.add_argument(
        "--part-size",
        type=positive_int,
        default=1024,
        help="input rows per committed part: the unit of resume and of memory (default 1024)",
    )
    p.add_argument(
        "--part-seconds",
        type=_seconds,
        default=60.0,
        help="also commit a part at the end of the first chunk after this many seconds since the last "
        "commit, so a kill loses at most about this much work on a slow model; 0: after every chunk "
        "(default 60)",
    )
    p.add_argument(
        "--chunk-size",
        type=positive_int,
        default=64,
        help="input rows per encode call (at most that many documents; default 64)",
    )
    p.add_argument(
        "--on-bad-row",
        choices=("fail", "skip"),
        default="fail",
        help="a row with invalid JSON, a missing or non-string text, or a missing id: stop with its line "
        "number (fail, default) or report it, skip it and list it in OUTPUT.rejects.jsonl (skip)",
    )
    p.add_argument("--overwrite", action="store_true", help="discard earlier output or unfinished parts")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar on stderr")
    p.set_defaults(func=_cmd_encode)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; a bad option value is a one-line usage error (exit 2), library errors a one-line
    message and exit code 1 (no traceback)."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except OptionError as exc:
        print(f"error: {exc.flag()}", file=sys.stderr)
        return 2
    except Longformer2VecError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
