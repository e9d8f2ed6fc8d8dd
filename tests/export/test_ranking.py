"""The ranking check: its numpy metrics, its text set, and a planted int8 fault that plain pooled cosine
passes and the ranking figures refuse."""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

import numpy as np
import pytest

from longformer2vec.errors import ParityError
from longformer2vec.export.ranking import (
    RANKING_THRESHOLDS,
    RankingFigures,
    centered_cosines,
    check_ranking,
    cosines,
    neighbour_agreement,
    neighbours,
    pairwise_spearman,
    ranking_metrics,
    ranks,
    spearman,
    text_ids,
)
from longformer2vec.export.ranking_texts import LONG_TEXTS, RANKING_TEXTS


def _clustered(rng: np.random.Generator, n: int = 24, dim: int = 48, common: float = 100.0) -> np.ndarray:
    """Vectors like mean-pooled ones: one large shared component plus a small text-dependent part."""
    shared = rng.normal(size=dim)
    return common * shared / np.linalg.norm(shared) + rng.normal(size=(n, dim))


def test_ranks_give_ties_their_average_rank() -> None:
    assert ranks(np.array([3, 1, 3, 2, 3])).tolist() == [4.0, 1.0, 4.0, 2.0, 4.0]  # scipy's rankdata


def test_spearman_matches_reference_values() -> None:
    # reference values from scipy.stats.spearmanr
    assert spearman(np.array([1, 2, 3, 4, 5]), np.array([5, 6, 7, 8, 7])) == pytest.approx(0.8207826816681233)
    a = np.array([0.1, 0.4, 0.2, 0.9, 0.3, 0.3])
    assert spearman(a, np.array([1, 3, 2, 6, 2, 5])) == pytest.approx(0.8676470588235294)
    assert spearman(a, -a) == pytest.approx(-1.0)
    assert np.isnan(spearman(a, np.ones_like(a)))


def test_identical_vectors_score_one_everywhere() -> None:
    ref = _clustered(np.random.default_rng(0))
    figures = ranking_metrics(ref.copy(), ref)
    assert figures == pytest.approx(dict.fromkeys(figures, 1.0))


def test_centered_cosine_sees_what_plain_cosine_hides() -> None:
    """Scrambling the text-dependent part barely moves plain cosine; centering exposes it."""
    rng = np.random.default_rng(1)
    ref = _clustered(rng)
    center = ref.mean(axis=0)
    scrambled = center + (ref - center)[rng.permutation(len(ref))]
    print(
        f"plain min {cosines(scrambled, ref).min():.4f}, centered {np.median(centered_cosines(scrambled, ref)):.4f}"
    )
    assert cosines(scrambled, ref).min() > 0.99
    assert np.median(centered_cosines(scrambled, ref)) < 0.3
    figures = ranking_metrics(scrambled, ref)
    assert figures["spearman"] < 0.5 and figures["top1_agreement"] < 0.5


def test_small_noise_keeps_rankings() -> None:
    rng = np.random.default_rng(2)
    ref = _clustered(rng)
    noisy = ref + 0.02 * rng.normal(size=ref.shape)
    figures = ranking_metrics(noisy, ref)
    print(figures)
    assert figures["centered_median_cosine"] > 0.999 and figures["spearman"] > 0.99
    assert figures["top1_agreement"] >= 0.9  # near-ties between random texts may flip


def test_neighbours_exclude_self_and_agreement_counts_sets() -> None:
    vectors = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9], [0.6, 0.8]])
    assert neighbours(vectors, 1)[:, 0].tolist() == [1, 0, 3, 2, 3]
    swapped = vectors[[1, 0, 2, 3, 4]]  # texts 0 and 1 trade vectors: their neighbours become each other
    assert neighbour_agreement(swapped, vectors, 1) == pytest.approx(1.0)
    moved = vectors.copy()
    moved[4] = [1.0, 0.05]  # text 4 moves between texts 0 and 1: only texts 2 and 3 keep their neighbour
    assert neighbour_agreement(moved, vectors, 1) == pytest.approx(2 / 5)
    assert neighbour_agreement(moved, vectors, 10) == 1.0  # k clipped to n - 1: every other text


def test_pairwise_spearman_over_all_pairs() -> None:
    rng = np.random.default_rng(3)
    ref = rng.normal(size=(6, 4))
    assert pairwise_spearman(ref * 3.0, ref) == pytest.approx(1.0)  # cosine ignores scale
    assert pairwise_spearman(rng.normal(size=(6, 4)), ref) < 0.9


def test_ranking_metrics_refuse_mismatched_shapes() -> None:
    with pytest.raises(ValueError, match="equal"):
        ranking_metrics(np.zeros((4, 3)), np.zeros((5, 3)))


def _figures(**values: float) -> RankingFigures:
    base = dict.fromkeys(
        (
            "plain_min_cosine",
            "centered_min_cosine",
            "centered_median_cosine",
            "spearman",
            "top1_agreement",
            "top5_agreement",
        ),
        1.0,
    )
    return RankingFigures(
        texts=27, global_first_token=False, tokens_min=3, tokens_max=9, **{**base, **values}
    )


def test_check_ranking_names_the_failing_figure() -> None:
    check_ranking([_figures()], "int8")
    name = next(iter(RANKING_THRESHOLDS))
    with pytest.raises(ParityError, match=rf"int8 graph failed the ranking check .*{name} 0\.1000 <"):
        check_ranking([_figures(**{name: 0.1})], "int8")
    with pytest.raises(ParityError, match=name):
        check_ranking([_figures(**{name: float("nan")})], "int8")


def test_text_set_is_multilingual_and_mixed_in_length() -> None:
    assert len(RANKING_TEXTS) >= 20 and len(set(RANKING_TEXTS)) == len(RANKING_TEXTS)
    scripts = {
        unicodedata.name(ch).split()[0]
        for text in RANKING_TEXTS
        for ch in text
        if ch.isalpha() and ord(ch) > 0x24F
    }
    assert {"CJK", "HIRAGANA", "CYRILLIC", "ARABIC"} <= scripts, scripts
    assert any("def " in t for t in RANKING_TEXTS) and any(re.search(r"\d+\.\d+", t) for t in RANKING_TEXTS)
    words = sorted(len(t.split()) for t in RANKING_TEXTS if t.isascii() or " " in t)
    assert words[0] < 15 and len(LONG_TEXTS) >= 3
    assert all(len(t) > 1800 for t in LONG_TEXTS)  # several hundred words: past a 512-token window


def test_text_ids_keep_the_specials_and_fit_the_model() -> None:
    from longformer2vec.export.synthetic import train_roberta_style_tokenizer

    backend = train_roberta_style_tokenizer()
    rows = text_ids(backend, max_len=64, vocab_size=backend.get_vocab_size())
    assert len(rows) == len(RANKING_TEXTS)
    for row in rows:
        assert row.shape[0] == 1 and 3 <= row.shape[1] <= 64
        assert row[0, 0] == 0 and row[0, -1] == 2  # <s> ... </s>
    assert rows[0][0].tolist() == backend.encode(RANKING_TEXTS[0]).ids  # short texts stay whole
    assert rows[-1].shape[1] == 64
    small = text_ids(backend, max_len=64, vocab_size=100)
    assert all(int(row[0, 1:-1].max(initial=0)) < 100 for row in small)  # ids the model lacks are dropped


# ---- a planted int8 fault on a random model (tiny geometry, weights std 0.04 so its layers carry weight)

FAULT = {"layer": -1, "fault": "negate"}  # the last feed-forward down-projection, sign flipped


@pytest.fixture(scope="module")
def weighty_hf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from longformer2vec.export.synthetic import make_random_longformer

    return make_random_longformer(
        tmp_path_factory.mktemp("hf") / "tiny", "tiny", attention_window=[8, 4, 8], initializer_range=0.04
    )


@pytest.fixture(scope="module")
def graphs(weighty_hf: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The HF model, its correct int8 graph and the same graph with :data:`FAULT` planted."""
    from longformer2vec.export import load_hf
    from longformer2vec.export.convert import export_onnx, quantize_int8
    from longformer2vec.export.faults import plant_int8_fault
    from longformer2vec.export.model import LongformerForExport, default_layout

    out = tmp_path_factory.mktemp("graphs")
    hf_model, tokenizer = load_hf(str(weighty_hf))
    layout = default_layout(hf_model.config, "int8")
    export_onnx(LongformerForExport(hf_model, layout=layout).eval(), out / "fp32.onnx")
    hf_model.eval()
    quantize_int8(out / "fp32.onnx", out / "int8.onnx")
    node = plant_int8_fault(out / "int8.onnx", out / "broken.onnx", **FAULT)
    return {
        "hf_model": hf_model,
        "tokenizer": tokenizer,
        "int8": out / "int8.onnx",
        "broken": out / "broken.onnx",
        "node": node,
    }


def _verify(graphs: dict, path: Path):
    """The exporter's two checks on one graph: the parity results and the ranking figures."""
    import onnxruntime as ort

    from longformer2vec.export import parity_cases
    from longformer2vec.export.ranking import RankingCheck
    from longformer2vec.export.verify import compare, format_table, torch_reference

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    cases = parity_cases(graphs["hf_model"].config, graphs["tokenizer"])
    results = []
    for case in cases:
        reference, seconds = torch_reference(graphs["hf_model"], case)
        results.append(compare(case, reference, session, seconds))
    print(format_table(results, path.name))
    check = RankingCheck(graphs["hf_model"], graphs["tokenizer"], progress=print)
    check.score(session, path.name)
    return results, check


def test_correct_int8_graph_passes_both_checks(graphs: dict) -> None:
    from longformer2vec.export.verify import check_thresholds

    results, check = _verify(graphs, graphs["int8"])
    check_thresholds(results, "int8")
    check.check("int8")


def test_planted_fault_passes_plain_cosine_but_not_the_ranking_check(graphs: dict) -> None:
    from longformer2vec.export.verify import check_thresholds

    results, check = _verify(graphs, graphs["broken"])
    print(f"planted: {FAULT['fault']} on {graphs['node']}")
    assert min(r.pooled_min_cosine for r in results) >= 0.99  # the pooled-cosine gate alone passes it ...
    assert min(f.plain_min_cosine for f in check.figures) >= 0.99  # ... and so does plain cosine on the texts
    check_thresholds(results, "int8")
    with pytest.raises(
        ParityError, match=r"int8 graph failed the ranking check .*centered_median_cosine 0\.\d+ <"
    ):
        check.check("int8")


def test_export_refuses_the_faulty_graph(weighty_hf: Path, tmp_path: Path, monkeypatch) -> None:
    """Through export_model: the planted fault fails the only recipe and nothing is written."""
    from longformer2vec.export import INT8_RECIPES, convert, export_model
    from longformer2vec.export.faults import plant_int8_fault

    quantize = convert.quantize_int8

    def quantize_and_break(fp32_path, int8_path, recipe):
        quantize(fp32_path, int8_path, recipe)
        plant_int8_fault(int8_path, int8_path, **FAULT)

    monkeypatch.setattr(convert, "quantize_int8", quantize_and_break)
    logged: list[str] = []
    with pytest.raises(ParityError, match=r"ranking check .*centered_median_cosine"):
        export_model(
            str(weighty_hf), tmp_path / "out", "int8", int8_recipes=INT8_RECIPES[:1], progress=logged.append
        )
    assert not (tmp_path / "out").exists()
    assert any(line.startswith("ranking int8 all-linear") for line in logged)
    assert not list(tmp_path.iterdir())  # no staging directory left either


def test_info_prints_the_ranking_figures(tiny_int8_dir: Path, capsys) -> None:
    import json

    from longformer2vec.cli import main

    assert main(["info", str(tiny_int8_dir)]) == 0
    out = capsys.readouterr().out
    assert "ranking onnx/model_int8.onnx (int8 all-linear) vs PyTorch eager fp32 (27 texts" in out
    # the int8 graph's first parity table is its fp32 source's, and says so
    assert "parity the fp32 source of onnx/model_int8.onnx (fp32), not onnx/model_int8.onnx itself" in out
    assert "parity onnx/model_int8.onnx (int8 all-linear) vs PyTorch eager fp32" in out
    assert "spearman" in out
    (graph,) = json.loads((tiny_int8_dir / "manifest.json").read_text())["graphs"]
    rows = next(iter(graph["ranking"].values()))
    torch_s, onnx_s = (sum(r[key] for r in rows) for key in ("seconds_torch", "seconds_onnx"))
    print(f"{out}\nranking check on the tiny export: PyTorch {torch_s:.2f} s, ONNX {onnx_s:.2f} s")
