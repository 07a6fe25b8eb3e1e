"""Respelt in-context episodes: one made-up orthography applied consistently to an utterance and its examples."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import torch

from datamodules.speech import SpeechDataset
from datamodules.speech_context import RESPELT, ContextSpeechDataset, respell


def test_respell_is_one_consistent_mapping_to_fresh_letters() -> None:
    texts = ["shamba la shule", "nina shule", "shamba kubwa"]
    for seed in range(50):
        done = respell(texts, random.Random(seed))
        assert done is not None
        out, rules = done
        assert out != texts and [len(t.split()) for t in out] == [3, 2, 2]
        assert 1 <= len(rules) <= 4 and all(unit in texts[0] for unit in rules)
        assert len(set(rules.values())) == len(rules) and not set(rules.values()) & set("".join(texts))
        back = out  # each new letter stands for one unit, in every text alike
        for unit, letter in rules.items():
            back = [t.replace(letter, unit) for t in back]
        assert back == texts


def test_respell_needs_a_shared_letter() -> None:
    assert respell(["abc", "xyz"], random.Random(0)) is None
    assert respell(["привет", "мир"], random.Random(0)) is not None  # и, р are shared


class _Rows(SpeechDataset):
    def __init__(self, texts: list[str]):
        self.rows = [{"audio": f"{i}.wav", "lang": "swh_Latn", "duration": 1.0} for i in range(len(texts))]
        self.texts = texts

    def __getitem__(self, i: int) -> dict[str, Any]:
        return {"wave": torch.zeros(160), "target": torch.zeros(0), "text": self.texts[i], "lang": "swh_Latn"}


def test_dataset_respells_whole_episodes_and_marks_them(tmp_path: Path) -> None:
    base = _Rows(["shamba la shule", "nina shule", "shamba kubwa", "la la la"])
    random.seed(0)
    always = [ContextSpeechDataset(base, 1.0, 2, 5.0, respell_prob=1.0)[i] for i in range(4)]
    assert all(x["lang"] == RESPELT and all(c["lang"] == RESPELT for c in x["context"]) for x in always)
    assert any(x["text"] not in base.texts for x in always)
    never = [ContextSpeechDataset(base, 1.0, 2, 5.0, respell_prob=0.0)[i] for i in range(4)]
    assert [x["text"] for x in never] == base.texts and {x["lang"] for x in never} == {"swh_Latn"}
