"""Offline builders for runtime tests: a RoBERTa-style tokenizer and a tiny stub Longformer model dir.

The stub graph honours the model-directory contract (same input/output names, dtypes and dynamic
axes) but is context-free: token vectors are rows of an embedding table, so tests can compute the
expected embeddings in numpy without the runtime.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from tokenizers import Tokenizer

from longformer2vec import contract
from longformer2vec.export import directory, synthetic
from longformer2vec.export.consumer_files import consumer_files

BOS, PAD, EOS, UNK = 0, 1, 2, 3
SPECIALS = ["<s>", "<pad>", "</s>", "<unk>"]
HIDDEN = 8
CORPUS = [
    "I enjoy taking long walks along the beach with my dog.",
    "Longformer processes documents of thousands of tokens with windowed attention.",
    "Transformer models scale quadratically with the sequence length.",
    "Global attention lets a few tokens attend to every other token.",
    "The quick brown fox jumps over the lazy dog.",
]


def train_roberta_style_tokenizer(vocab_size: int = 300) -> Tokenizer:
    """The exporter's test tokenizer (RoBERTa specials `<s>`=0, `<pad>`=1, `</s>`=2, `<unk>`=3)."""
    tok = synthetic.train_roberta_style_tokenizer(vocab_size, CORPUS)
    for i, name in enumerate(SPECIALS):
        assert tok.token_to_id(name) == i, (name, tok.token_to_id(name))
    return tok


def embedding_table(vocab_size: int, hidden: int = HIDDEN, seed: int = 0) -> np.ndarray:
    """Deterministic stand-in for the model's token vectors."""
    return np.random.default_rng(seed).standard_normal((vocab_size, hidden)).astype(np.float32)


def global_vector(hidden: int = HIDDEN) -> np.ndarray:
    """Added to a token's vector when its global_attention_mask is 1, so global attention is observable."""
    return np.linspace(1.0, 2.0, hidden, dtype=np.float32)


def build_stub_graph(table: np.ndarray, opset: int = 17) -> onnx.ModelProto:
    """hidden = table[ids] + global*g; sentence_embedding = masked mean of hidden over attention_mask."""
    hidden = table.shape[1]
    seq = ["batch", "sequence"]
    inputs = [
        helper.make_tensor_value_info(n, TensorProto.INT64, seq)
        for n in ("input_ids", "attention_mask", "global_attention_mask")
    ]
    outputs = [
        helper.make_tensor_value_info("last_hidden_state", TensorProto.FLOAT, ["batch", "sequence", hidden]),
        helper.make_tensor_value_info("sentence_embedding", TensorProto.FLOAT, ["batch", hidden]),
    ]
    inits = [
        numpy_helper.from_array(table, "table"),
        numpy_helper.from_array(global_vector(hidden), "gvec"),
        numpy_helper.from_array(np.array([-1], dtype=np.int64), "axis_last"),
        numpy_helper.from_array(np.array([1], dtype=np.int64), "axis_seq"),
        numpy_helper.from_array(np.array(1e-9, dtype=np.float32), "eps"),
    ]
    nodes = [
        helper.make_node("Gather", ["table", "input_ids"], ["emb"], axis=0),
        helper.make_node("Cast", ["global_attention_mask"], ["gf"], to=TensorProto.FLOAT),
        helper.make_node("Unsqueeze", ["gf", "axis_last"], ["gf3"]),
        helper.make_node("Mul", ["gf3", "gvec"], ["gadd"]),
        helper.make_node("Add", ["emb", "gadd"], ["last_hidden_state"]),
        helper.make_node("Cast", ["attention_mask"], ["mf"], to=TensorProto.FLOAT),
        helper.make_node("Unsqueeze", ["mf", "axis_last"], ["mf3"]),
        helper.make_node("Mul", ["last_hidden_state", "mf3"], ["masked"]),
        helper.make_node("ReduceSum", ["masked", "axis_seq"], ["summed"], keepdims=0),
        helper.make_node("ReduceSum", ["mf3", "axis_seq"], ["count"], keepdims=0),
        helper.make_node("Max", ["count", "eps"], ["count_safe"]),
        helper.make_node("Div", ["summed", "count_safe"], ["sentence_embedding"]),
    ]
    graph = helper.make_graph(nodes, "longformer_stub", inputs, outputs, initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def write_stub_model_dir(
    out: Path,
    *,
    max_length: int = 32,
    pad_multiple: int = 8,
    model_id: str = "stub/longformer-tiny",
    with_card: bool = True,
    tokenizer_padding: bool = True,
    precisions: tuple[str, ...] = ("fp32",),
    global_tokens: bool = True,
) -> Path:
    """Write a complete model directory (graph, tokenizer, card, manifest with real sha256s), laid out by
    :mod:`longformer2vec.contract`. Each precision gets a copy of the same stub graph (the stub has no
    weights to quantize), so graph choice is observable through the manifest only.

    `tokenizer_padding` bakes padding/truncation into tokenizer.json so tests prove the runtime strips them.
    """
    out.mkdir(parents=True, exist_ok=True)
    tok = train_roberta_style_tokenizer()
    if tokenizer_padding:
        tok.enable_padding(pad_id=PAD, pad_token="<pad>", length=64)
        tok.enable_truncation(max_length=16)
    tok.save(str(out / contract.TOKENIZER_FILE))
    table = embedding_table(tok.get_vocab_size())
    np.save(out / "table.npy", table)  # test oracle only; not part of the contract
    if with_card:
        (out / contract.CARD_FILE).write_text(
            "---\n"
            'model_id: "text/stub"\n'
            'model_name: "Stub Longformer"  \n'
            f"vector_length: '{HIDDEN} (default)'\n"
            'paper: "https://arxiv.org/abs/2004.05150"\n'
            "category: text\n"
            "custom_key: kept\n"
            "---\n\n## Description\n\nTiny stub.\n",
            encoding="utf-8",
        )
    parity = {
        "fp32": [
            {
                "case": "one_token",
                "lengths": [3],
                "global_first_token": False,
                "token_max_abs": 1e-6,
                "token_max_relative": 1e-7,
                "token_min_cosine": 1.0,
                "pooled_max_abs": 1e-6,
                "pooled_min_cosine": 1.0,
                "seconds_torch": 0.01,
                "seconds_onnx": 0.01,
            }
        ]
    }
    graphs = []
    for precision in precisions:
        relative = contract.graph_file(precision, global_tokens)
        (out / relative).parent.mkdir(parents=True, exist_ok=True)
        onnx.save(build_stub_graph(table), str(out / relative))
        graphs.append(
            contract.GraphEntry(
                file=relative,
                precision=precision,
                global_tokens=global_tokens,
                sha256=contract.sha256_file(out / relative),
                layout="gpu",
                pad_multiple=pad_multiple,
                opset=17,
                node_count=12,
                parity=parity,
                versions={"onnx": onnx.__version__},
                created="2024-01-01T00:00:00Z",
                model_dir=out,
            )
        )
    specials = {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "pad_token": "<pad>"}
    tokenizer_json = json.loads((out / contract.TOKENIZER_FILE).read_text(encoding="utf-8"))
    directory.write_consumer_files(out, consumer_files(tokenizer_json, specials, HIDDEN, max_length))
    directory.write_manifest(
        contract.Manifest(
            path=out / contract.MANIFEST_FILE,
            format_version=contract.FORMAT_VERSION,
            model_id=model_id,
            max_length=max_length,
            vector_length=HIDDEN,
            graphs=graphs,
            pad_token_id=PAD,
            attention_windows=[4, 4],
        )
    )
    return out


def stub_graph_path(model_dir: Path, precision: str = "fp32", global_tokens: bool = True) -> Path:
    return model_dir / contract.graph_file(precision, global_tokens)


def oracle_vector(table: np.ndarray, ids: list[int], global_first: bool = False) -> np.ndarray:
    """Expected mean-pooled vector of one unpadded row."""
    rows = table[ids].astype(np.float64)
    if global_first:
        rows[0] += global_vector(table.shape[1])
    return rows.mean(axis=0)
