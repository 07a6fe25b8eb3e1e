"""text.xsim: margin retrieval error and search recall on constructed embeddings, table and heatmap output."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from text.xsim import (
    format_matrix,
    margin_scores,
    mean_error,
    pivot_figures,
    search_recall,
    write_report,
    xsim_error,
    xsim_matrix,
)


def _aligned(n: int = 50, d: int = 32, noise: float = 0.05, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = F.normalize(torch.randn(n, d, generator=g), dim=-1)
    return x, F.normalize(x + noise * torch.randn(n, d, generator=g), dim=-1)


@pytest.mark.parametrize("margin", ["ratio", "cosine"])
def test_perfect_and_shuffled(margin: str) -> None:
    x, y = _aligned()
    assert xsim_error(x, x, margin) == 0.0
    assert xsim_error(x, y, margin) == 0.0
    assert xsim_error(x, y[torch.randperm(50, generator=torch.Generator().manual_seed(1))], margin) > 0.9


def test_ratio_margin_by_hand() -> None:
    x, y = _aligned(n=6, d=4, noise=0.5)
    sim = x @ y.T
    k = 2
    fwd = sim.topk(k, dim=1).values.mean(1)
    bwd = sim.T.topk(k, dim=1).values.mean(1)
    expected = sim / ((fwd[:, None] + bwd[None, :]) / 2)
    torch.testing.assert_close(margin_scores(x, y, "ratio", k), expected)
    torch.testing.assert_close(margin_scores(x, y, "cosine"), sim)


def test_margin_discounts_hubs() -> None:
    # Targets 0 and 3 are near several sources; plain cosine retrieves them for the wrong sources, the ratio
    # margin (k=2) divides their scores by their neighbourhood density and gets 3 of 4 right.
    src = F.normalize(torch.tensor([[-0.04, 0.19, 0.98], [-0.57, -0.13, -0.81], [-0.80, -0.60, -0.05],
                                    [-0.93, 0.13, -0.34]]), dim=-1)
    tgt = F.normalize(torch.tensor([[0.89, 0.33, 0.32], [0.14, 0.88, 0.45], [-0.43, -0.89, -0.15],
                                    [-0.45, 0.72, 0.53]]), dim=-1)
    assert xsim_error(src, tgt, "cosine", k=2) == 0.75
    assert xsim_error(src, tgt, "ratio", k=2) == 0.25


def test_matrix_mean_and_table() -> None:
    x, y = _aligned()
    embs = {"eng_Latn": x, "deu_Latn": y, "tur_Latn": x[torch.randperm(50)]}
    m = xsim_matrix(embs)
    assert set(m) == set(embs) and all(a not in row for a, row in m.items())
    assert mean_error(m, ["eng_Latn", "deu_Latn"]) == 0.0
    assert mean_error(m) > 0.5
    table = format_matrix(m)
    assert table.splitlines()[0].split()[-3:] == ["deu_Latn", "eng_Latn", "tur_Latn"] and len(table.splitlines()) == 4
    with pytest.raises(ValueError, match="equal sizes"):
        xsim_error(x, y[:3])
    with pytest.raises(ValueError, match="margin"):
        margin_scores(x, y, "max")


def test_pivot_figures_split_english_from_the_rest() -> None:
    m = {"eng_Latn": {"deu_Latn": 0.02, "hin_Deva": 0.08}, "deu_Latn": {"eng_Latn": 0.04, "hin_Deva": 0.3},
         "hin_Deva": {"eng_Latn": 0.06, "deu_Latn": 0.1}}
    got = pivot_figures(m, ["eng_Latn", "deu_Latn", "hin_Deva"])
    assert got["mean_xsim_pivot"] == pytest.approx(0.05) and got["max_xsim_pivot"] == 0.08
    assert got["mean_xsim_others"] == pytest.approx(0.2) and got["max_xsim_others"] == 0.3
    assert pivot_figures(m, ["deu_Latn", "hin_Deva"]) == {}


def test_search_recall() -> None:
    x, y = _aligned(noise=0.0)
    assert search_recall(x, y) == {"recall@1": 1.0, "recall@5": 1.0}
    shifted = y[torch.roll(torch.arange(50), 3)]  # the right document is never first
    r = search_recall(x, shifted, ks=(1, 50))
    assert r["recall@1"] == 0.0 and r["recall@50"] == 1.0


def test_report_files(tmp_path: Path) -> None:
    x, y = _aligned()
    m = xsim_matrix({"eng_Latn": x, "ukr_Cyrl": y})
    write_report(m, tmp_path, {"note": "test"})
    saved = json.loads((tmp_path / "xsim.json").read_text())
    assert saved["xsim_error"]["eng_Latn"]["ukr_Cyrl"] == 0.0 and saved["note"] == "test"
    assert (tmp_path / "xsim.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
