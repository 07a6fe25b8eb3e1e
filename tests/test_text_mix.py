"""Real and generated text together: mixing parallel sources by weight, xsim on rows with missing languages."""

from __future__ import annotations

import pytest
import torch

from datamodules.text import mix_rows, named_paths
from text.xsim import format_matrix, pairwise_matrix, xsim_error


def _rows(tag: str, n: int) -> list[dict[str, str]]:
    return [{"eng_Latn": f"{tag}{i}", "deu_Latn": f"{tag}{i}"} for i in range(n)]


def test_mix_rows_gives_each_source_its_share() -> None:
    sources = {"real": _rows("r", 10), "generated": _rows("g", 90)}
    assert len(mix_rows(sources, None)) == 100
    mixed = mix_rows(sources, {"real": 1, "generated": 1})
    real = [r for r in mixed if r["eng_Latn"].startswith("r")]
    assert len(mixed) == 100 and len(real) == 50 and len({r["eng_Latn"] for r in real}) == 10  # repeated 5 times
    assert all(r["eng_Latn"].startswith("g") for r in mix_rows(sources, {"real": 0, "generated": 1}))
    with pytest.raises(ValueError, match="train_weights names \\['synthetic'\\]"):
        mix_rows(sources, {"synthetic": 1})
    assert named_paths("a.jsonl") == {"default": "a.jsonl"} and named_paths(["a", "b"]) == {"0": "a", "1": "b"}


def test_pairwise_matrix_scores_each_pair_on_its_shared_rows() -> None:
    torch.manual_seed(0)
    base = torch.randn(30, 8)
    eng = ([*range(30)], base)
    deu = ([*range(0, 30, 2)], base[::2] + 0.01 * torch.randn(15, 8))  # every second row
    swh = ([0, 1, 2], base[:3])  # too few rows to score
    matrix = pairwise_matrix({"eng_Latn": eng, "deu_Latn": deu, "swh_Latn": swh}, min_rows=5)
    assert matrix["eng_Latn"]["deu_Latn"] == xsim_error(base[::2], deu[1]) == 0.0
    assert "swh_Latn" not in matrix["eng_Latn"] and matrix["swh_Latn"] == {}
    assert "." in format_matrix(matrix)
    shuffled = ([*range(29, -1, -1)], base.flip(0))  # row ids, not positions, align the pairs
    assert pairwise_matrix({"eng_Latn": shuffled, "deu_Latn": deu})["deu_Latn"]["eng_Latn"] == 0.0
