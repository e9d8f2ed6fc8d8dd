"""One options object, checked once, built by the API, the CLI and the server alike."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from longformer2vec import Longformer2Vec
from longformer2vec.options import ModelOptions, OptionError


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"pooling": "max"}, "pooling must be one of ['mean', 'cls'], got 'max'"),
        ({"precision": "bf16"}, "precision must be one of [None, 'fp32', 'int8', 'fp16'], got 'bf16'"),
        ({"global_attention": "all"}, "global_attention must be one of ['none', 'cls'], got 'all'"),
        ({"batch_size": 0}, "batch_size must be an integer >= 1, got 0"),
        ({"batch_size": True}, "batch_size must be an integer >= 1, got True"),
        ({"threads": 0}, "threads must be an integer >= 1, got 0"),
        ({"max_batch_tokens": -5}, "max_batch_tokens must be an integer >= 1, got -5"),
        ({"chunk_overlap": -1}, "chunk_overlap must be an integer >= 0, got -1"),
        ({"spin": "no"}, "spin must be True or False, got 'no'"),
    ],
)
def test_each_option_is_checked_in_one_place(kwargs: dict, message: str) -> None:
    with pytest.raises(OptionError) as info:
        ModelOptions(**kwargs)
    assert str(info.value) == message
    flag = "--" + next(iter(kwargs)).replace("_", "-")
    assert info.value.flag().startswith(flag + " must be")


def test_api_cli_and_server_build_the_same_options(stub_dir: Path) -> None:
    from longformer2vec.cli import build_parser
    from longformer2vec.serving.config import ServeConfig

    args = build_parser().parse_args(
        ["embed", "--model", str(stub_dir), "--pooling", "cls", "--threads", "2", "x"]
    )
    from_cli = ModelOptions.from_namespace(args)
    from_server = ServeConfig(str(stub_dir), pooling="cls", threads=2, spin=True).model_options()
    assert from_cli == from_server == ModelOptions(str(stub_dir), pooling="cls", threads=2)
    model = Longformer2Vec(stub_dir, pooling="cls", intra_op_num_threads=2)
    assert model.options == from_cli
    assert Longformer2Vec.from_options(from_cli).encode("dog") == model.encode("dog")


def test_spinning_is_on_in_the_api_and_off_in_the_server(stub_dir: Path) -> None:
    """The server's event loop and tokenizer threads share the cores: its model threads sleep when idle."""
    from longformer2vec.cli import build_parser
    from longformer2vec.serving.config import ServeConfig
    from longformer2vec.session import ALLOW_SPINNING

    serve = build_parser().parse_args(["serve", "--model", str(stub_dir)])
    assert ServeConfig(**{k: v for k, v in vars(serve).items() if k not in ("command", "func")}).spin is False
    assert ServeConfig(str(stub_dir)).model_options().spin is False
    assert ModelOptions.from_namespace(build_parser().parse_args(["embed", "--model", "m", "x"])).spin
    assert not ModelOptions.from_namespace(
        build_parser().parse_args(["embed", "--model", "m", "--no-spin", "x"])
    ).spin

    def entry(model: Longformer2Vec) -> str:
        return model._session.session.get_session_options().get_session_config_entry(ALLOW_SPINNING)

    assert entry(Longformer2Vec(stub_dir, spin=False)) == "0"
    with pytest.raises(Exception, match="allow_spinning"):  # not set: ONNX Runtime's default (spin)
        entry(Longformer2Vec(stub_dir))


def test_api_names_its_own_keyword(stub_dir: Path) -> None:
    with pytest.raises(ValueError, match=r"^intra_op_num_threads must be an integer >= 1, got 0$"):
        Longformer2Vec(str(stub_dir), intra_op_num_threads=0)


def test_cli_bad_count_is_a_one_line_usage_error(stub_dir: Path, capsys) -> None:
    from longformer2vec.cli import main

    assert main(["embed", "--model", str(stub_dir), "--threads", "0", "dog"]) == 2
    assert capsys.readouterr().err == "error: --threads must be an integer >= 1, got 0\n"


def test_server_names_the_flag() -> None:
    from longformer2vec.serving.config import ServeConfig

    with pytest.raises(ValueError, match=r"^--batch-size must be an integer >= 1, got 0$"):
        ServeConfig("m", batch_size=0)


def test_from_namespace_ignores_other_flags() -> None:
    args = argparse.Namespace(model="m", precision=None, part_size=3, batch_size=None, func=print)
    assert ModelOptions.from_namespace(args) == ModelOptions("m")
