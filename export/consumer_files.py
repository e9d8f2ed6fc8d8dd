"""The files other tools read beside the graphs (tokenizer_config.json, special_tokens_map.json,
sentence-transformers' module files), built from the tokenizer and the model's geometry, so
sentence-transformers, optimum, fastembed and transformers.js load an export as it is."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from ..contract import (
    POOLING_CONFIG_FILE,
    SENTENCE_TRANSFORMERS_CONFIG_FILE,
    SENTENCE_TRANSFORMERS_MODULES_FILE,
    SPECIAL_TOKENS_MAP_FILE,
    TOKENIZER_CONFIG_FILE,
)

SPECIAL_TOKEN_KEYS = (
    "bos_token",
    "eos_token",
    "unk_token",
    "sep_token",
    "pad_token",
    "cls_token",
    "mask_token",
)


def tokenizer_class(tokenizer_json: Mapping[str, Any]) -> str:
    """The ``tokenizer_class`` every consumer loads for a ``tokenizer.json``: byte-level BPE (RoBERTa,
    Longformer) -> ``RobertaTokenizer``, WordPiece -> ``BertTokenizer``, else the generic fast class."""
    model_type = (tokenizer_json.get("model") or {}).get("type")
    if model_type == "WordPiece":
        return "BertTokenizer"
    if model_type == "BPE" and "ByteLevel" in json.dumps(tokenizer_json.get("pre_tokenizer")):
        return "RobertaTokenizer"
    return "PreTrainedTokenizerFast"


def _find_component(component: Any, kind: str) -> dict[str, Any] | None:
    """A normalizer / pre-tokenizer of ``kind`` inside a (possibly ``Sequence``) component."""
    if not isinstance(component, dict):
        return None
    if component.get("type") == kind:
        return component
    for key in ("normalizers", "pretokenizers", "pre_tokenizers"):
        for child in component.get(key) or ():
            found = _find_component(child, kind)
            if found is not None:
                return found
    return None


def tokenizer_config(
    tokenizer_json: Mapping[str, Any], special_tokens: Mapping[str, str], max_length: int
) -> dict[str, Any]:
    """`tokenizer_config.json`: a class transformers 4.x and 5.x, transformers.js and fastembed all load,
    the special tokens (the pad token included: consumers pad batches), and ``model_max_length`` equal
    to the graph's longest input. The class-specific flags repeat what ``tokenizer.json`` does, because
    transformers' RoBERTa and BERT tokenizers rebuild their pre-tokenizer or normalizer from these flags."""
    cls = tokenizer_class(tokenizer_json)
    config: dict[str, Any] = {"tokenizer_class": cls, "model_max_length": int(max_length)}
    config.update({k: special_tokens[k] for k in SPECIAL_TOKEN_KEYS if special_tokens.get(k)})
    config["clean_up_tokenization_spaces"] = False
    if cls == "RobertaTokenizer":
        byte_level = _find_component(tokenizer_json.get("pre_tokenizer"), "ByteLevel") or {}
        config["add_prefix_space"] = bool(byte_level.get("add_prefix_space", False))
        processor = tokenizer_json.get("post_processor") or {}
        config["trim_offsets"] = bool(processor.get("trim_offsets", True))
    elif cls == "BertTokenizer":
        normalizer = _find_component(tokenizer_json.get("normalizer"), "BertNormalizer") or {}
        config["do_lower_case"] = bool(normalizer.get("lowercase", False))
        config["strip_accents"] = normalizer.get("strip_accents")
        config["tokenize_chinese_chars"] = bool(normalizer.get("handle_chinese_chars", True))
    return config


def sentence_transformers_files(vector_length: int, max_length: int) -> dict[str, Any]:
    """sentence-transformers' module files: the model's ``last_hidden_state``, then a mean over real
    tokens (what ``sentence_embedding`` and VectorHub's ``encode`` compute), up to ``max_length`` tokens."""
    return {
        SENTENCE_TRANSFORMERS_MODULES_FILE: [
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        ],
        SENTENCE_TRANSFORMERS_CONFIG_FILE: {"max_seq_length": int(max_length), "do_lower_case": False},
        POOLING_CONFIG_FILE: {
            "word_embedding_dimension": int(vector_length),
            "pooling_mode_cls_token": False,
            "pooling_mode_mean_tokens": True,
            "pooling_mode_max_tokens": False,
            "pooling_mode_mean_sqrt_len_tokens": False,
            "pooling_mode_weightedmean_tokens": False,
            "pooling_mode_lasttoken": False,
            "include_prompt": True,
        },
    }


def consumer_files(
    tokenizer_json: Mapping[str, Any], special_tokens: Mapping[str, str], vector_length: int, max_length: int
) -> dict[str, Any]:
    """Every JSON file other tools read, by relative path (``config.json`` aside: it is the model's own)."""
    special = {k: special_tokens[k] for k in SPECIAL_TOKEN_KEYS if special_tokens.get(k)}
    return {
        TOKENIZER_CONFIG_FILE: tokenizer_config(tokenizer_json, special, max_length),
        SPECIAL_TOKENS_MAP_FILE: special,
        **sentence_transformers_files(vector_length, max_length),
    }
