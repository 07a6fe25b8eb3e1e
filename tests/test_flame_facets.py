"""vision.flame.facets: one decoupled forward pass gives every facet what its own forward pass would give it."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch

from tests.flame_llm import write_tiny_llm
from vision.flame.facets import FacetEncoder, FacetPrompts, facet_batch, facet_set, facet_sets

CAPTIONS = [
    "a small red cube to the left of two blue spheres on a wooden floor",
    "ein Würfel",
    "три зелені конуси під великою жовтою кулею, поруч стоїть смугаста піраміда",
    "x",
]


@pytest.fixture(scope="module")
def llm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_llm(tmp_path_factory.mktemp("flame_llm"))


@pytest.fixture(scope="module")
def encoder(llm: Path) -> FacetEncoder:
    torch.set_num_threads(1)
    return FacetEncoder(llm, "long", max_caption_tokens=256, normalize=False)


def separate_passes(enc: FacetEncoder, captions: list[str]) -> torch.Tensor:
    """The reference: one plain causal forward pass per (caption, facet), prefix then that facet's prompt alone."""
    out = torch.empty(len(captions), enc.num_facets, enc.dim)
    with torch.no_grad():
        for b, shared in enumerate(enc.shared_ids(captions)):
            for k, facet in enumerate(enc.facet_ids):
                ids = torch.tensor([shared + facet])
                out[b, k] = enc.model(input_ids=ids, use_cache=False).last_hidden_state[0, -1]
    return out


def test_named_sets_have_3_and_7_facets() -> None:
    assert len(facet_set("short")) == 3 and len(facet_set("long")) == 7 and len(facet_set("single")) == 1
    assert facet_set("long").names[:3] == facet_set("short").names
    assert all(p.endswith('"') for s in facet_sets().values() for _, p in s.facets)  # read out at the quote mark
    with pytest.raises(KeyError, match=r"unknown facet set 'medium'.*short"):
        facet_set("medium")
    with pytest.raises(ValueError, match=r"must contain '\{caption\}'"):
        FacetPrompts(prefix="no caption here", facets=(("whole", 'means:"'),))


def test_one_pass_equals_separate_passes(encoder: FacetEncoder) -> None:
    lengths = {len(s) for s in encoder.shared_ids(CAPTIONS)}
    assert len(lengths) == len(CAPTIONS)  # every row padded differently
    one = encoder.encode(CAPTIONS, batch_size=len(CAPTIONS))  # [B, K, D]
    assert one.shape == (len(CAPTIONS), 7, encoder.dim)
    torch.testing.assert_close(one, separate_passes(encoder, CAPTIONS), atol=1e-4, rtol=1e-4)
    # Not trivially equal: facets and captions give different vectors.
    assert (one[:, 0] - one[:, 1]).abs().max() > 1e-2 and (one[0] - one[1]).abs().max() > 1e-2


def test_batch_composition_does_not_matter(encoder: FacetEncoder) -> None:
    together = encoder.encode(CAPTIONS, batch_size=len(CAPTIONS))
    alone = torch.cat([encoder.encode([c]) for c in CAPTIONS])
    torch.testing.assert_close(together, alone, atol=1e-5, rtol=1e-4)


def test_a_facet_does_not_see_the_other_facets(encoder: FacetEncoder) -> None:
    base = encoder.prompts
    before = encoder.encode(CAPTIONS[:2])
    facets = list(base.facets)
    facets[2] = (facets[2][0], 'something else entirely, longer than before, in one word:"')
    try:
        after = encoder.set_prompts(replace(base, facets=tuple(facets))).encode(CAPTIONS[:2])
    finally:
        encoder.set_prompts(base)
    others = [k for k in range(7) if k != 2]
    torch.testing.assert_close(after[:, others], before[:, others], atol=1e-5, rtol=1e-5)
    assert (after[:, 2] - before[:, 2]).abs().max() > 1e-2
    # The caption reaches every facet: another prefix changes them all.
    prefixed = encoder.set_prompts(replace(base, prefix='Photo: "{caption}" .')).encode(CAPTIONS[:2])
    encoder.set_prompts(base)
    assert ((prefixed - before).abs().amax(dim=(0, 2)) > 1e-3).all()


def test_the_mask_by_hand() -> None:
    fb = facet_batch([[5, 6], [7]], [[8, 9], [10]], pad_id=0)  # row 1 left-padded by one
    assert fb.input_ids.tolist() == [[5, 6, 8, 9, 10], [0, 7, 8, 9, 10]]
    assert fb.position_ids.tolist() == [[0, 1, 2, 3, 2], [0, 0, 1, 2, 1]]
    assert fb.read_out.tolist() == [3, 4]
    assert fb.allowed[1].int().tolist() == [
        [1, 0, 0, 0, 0],  # the padding query sees itself only, never a NaN row
        [0, 1, 0, 0, 0],
        [0, 1, 1, 0, 0],
        [0, 1, 1, 1, 0],
        [0, 1, 0, 0, 1],  # facet 2 sees the caption and itself, not facet 1
    ]


def test_normalised_output_and_caption_cut(llm: Path) -> None:
    enc = FacetEncoder(llm, "short", max_caption_tokens=12)
    emb = enc.encode([CAPTIONS[0], CAPTIONS[0] + " and much more text after the cut"])
    torch.testing.assert_close(emb.norm(dim=-1), torch.ones(2, 3))
    torch.testing.assert_close(emb[0], emb[1])  # both cut to the same 12 caption tokens
    assert enc.encode([]).shape == (0, 3, enc.dim)


def test_reduced_precision_runs_close(llm: Path, encoder: FacetEncoder) -> None:
    half = FacetEncoder(llm, "long", max_caption_tokens=256, dtype="bfloat16")
    cos = torch.nn.functional.cosine_similarity(half.encode(CAPTIONS[:2]), encoder.encode(CAPTIONS[:2]), dim=-1)
    assert cos.min() > 0.95


def test_bad_model_dir_and_dtype(tmp_path: Path, llm: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"no config\.json"):
        FacetEncoder(tmp_path, "short")
    with pytest.raises(ValueError, match="dtype='float8'"):
        FacetEncoder(llm, "short", dtype="float8")
