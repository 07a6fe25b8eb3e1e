"""text.normalize and text.char_vocab: any script passes through; unseen characters never crash."""

from __future__ import annotations

import json
import unicodedata
from pathlib import Path

import pytest

from text.char_vocab import BLANK, SPACE, UNK, CharVocab
from text.normalize import normalize_transcript, script_of

# ---------------------------------------------------------------- normalisation


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Hello, World!  How ARE you?", "hello world how are you"),
        ("  leading and trailing\t\n", "leading and trailing"),
        ("ÉCOLE Straße", "école straße"),
        ("a_b-c 3.5%", "a b c 3 5"),
        ("«Привіт», — сказав він…", "привіт сказав він"),
        ("", ""),
        ("?!.,;:", ""),
    ],
)
def test_case_punctuation_whitespace(raw: str, expected: str) -> None:
    assert normalize_transcript(raw) == expected


def test_devanagari_matras_and_virama_kept() -> None:
    raw = "नमस्ते दुनिया। आप कैसे हैं?"
    out = normalize_transcript(raw)
    assert out == "नमस्ते दुनिया आप कैसे हैं"
    # Every combining mark of the input (matras, virama, anusvara) survives.
    marks = [c for c in raw if unicodedata.category(c).startswith("M")]
    assert marks and [c for c in out if unicodedata.category(c).startswith("M")] == marks
    assert "।" not in out  # the danda is punctuation


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Я п’ю м'ятний чай!", "я п'ю м'ятний чай"),  # U+2019 and U+0027
        ("мʼята", "м'ята"),  # U+02BC modifier letter apostrophe
        ("L’uomo dell'anno", "l'uomo dell'anno"),
        ("C'est l'été", "c'est l'été"),
    ],
)
def test_word_internal_apostrophes_kept(raw: str, expected: str) -> None:
    assert normalize_transcript(raw) == expected


@pytest.mark.parametrize("raw", ["'quoted'", "‘quoted’", "quoted'", "' quoted '"])
def test_edge_apostrophes_dropped(raw: str) -> None:
    assert normalize_transcript(raw) == "quoted"


def test_arabic_kept_with_diacritics() -> None:
    raw = "مَرْحَبًا بالعالم؟ شُكّرًا،"
    out = normalize_transcript(raw)
    assert out == "مَرْحَبًا بالعالم شُكّرًا"
    assert "\u0651" in out  # shadda
    assert "؟" not in out and "،" not in out


def test_nfc_composition() -> None:
    decomposed = "e\u0301te\u0301"  # e + combining acute
    assert normalize_transcript(decomposed) == "\u00e9t\u00e9"
    assert normalize_transcript(decomposed) == normalize_transcript("été")


def test_idempotent() -> None:
    samples = ["Hello, World!", "नमस्ते दुनिया।", "м’ята", "L'uomo", "مرحبا بالعالم؟", "你好，世界！"]
    for s in samples:
        once = normalize_transcript(s)
        assert normalize_transcript(once) == once


def test_chinese_passes_through() -> None:
    assert normalize_transcript("你好，世界！") == "你好 世界"


def test_script_of() -> None:
    assert script_of("a") == "LATIN"
    assert script_of("я") == "CYRILLIC"
    assert script_of("न") == "DEVANAGARI"
    assert script_of("م") == "ARABIC"
    assert script_of("\x00") == "UNKNOWN"


# ---------------------------------------------------------------- CharVocab


TEXTS = ["hello world", "привіт світ", "नमस्ते", "l'uomo", "مرحبا"]


def test_special_ids() -> None:
    vocab = CharVocab.build(TEXTS)
    assert vocab.tokens[:3] == [BLANK, UNK, SPACE]
    assert vocab.blank_id == 0 and vocab.unk_id == 1
    assert vocab.encode(" ") == [2]
    assert len(vocab) == len(vocab.tokens) == len(set(vocab.tokens))


def test_build_orders_by_frequency_then_char() -> None:
    vocab = CharVocab.build(["abcb", "cbz"])
    # b x3, c x2, then a and z once each (ties broken by the character).
    assert vocab.tokens[3:] == ["b", "c", "a", "z"]


def test_build_min_count() -> None:
    vocab = CharVocab.build(["aab", "ac"], min_count=2)
    assert vocab.tokens[3:] == ["a"]
    assert vocab.encode("abc") == [3, 1, 1]


def test_encode_decode_round_trip() -> None:
    vocab = CharVocab.build(TEXTS)
    for t in TEXTS:
        ids = vocab.encode(t)
        assert len(ids) == len(t)
        assert all(i > 1 for i in ids)
        assert vocab.decode(ids) == t
    # All characters of the corpus and nothing else (besides the three specials).
    assert set(vocab.tokens[3:]) == set("".join(TEXTS)) - {" "}


@pytest.mark.parametrize("unseen", ["中", "😀", "\x00", "ß"])
def test_unseen_character_is_unk(unseen: str) -> None:
    vocab = CharVocab.build(TEXTS)
    ids = vocab.encode(f"he{unseen}llo")
    assert ids[2] == vocab.unk_id
    assert ids[:2] == vocab.encode("he") and ids[3:] == vocab.encode("llo")
    assert vocab.decode(ids) == "hello"  # UNK produces nothing


def test_decode_drops_blank_and_unk_keeps_space() -> None:
    vocab = CharVocab.build(["ab"])
    a, b = vocab.encode("ab")
    assert vocab.decode([0, a, 0, 1, 2, b, 0, 1]) == "a b"
    assert vocab.decode([]) == ""
    assert vocab.decode([0, 0, 1]) == ""


def test_extend_keeps_old_ids() -> None:
    vocab = CharVocab.build(TEXTS)
    before = {t: i for i, t in enumerate(vocab.tokens)}
    old_len = len(vocab)
    new = vocab.extend("你好o你😀")
    assert new == ["你", "好", "😀"]  # unseen only, deduplicated, in order
    assert len(vocab) == old_len + 3
    for t, i in before.items():
        assert vocab.index[t] == i and vocab.tokens[i] == t
    assert vocab.encode("你好😀") == [old_len, old_len + 1, old_len + 2]
    assert vocab.decode(vocab.encode("o你")) == "o你"
    assert vocab.extend("你o") == []
    assert len(vocab) == old_len + 3


def test_save_load_round_trip(tmp_path: Path) -> None:
    vocab = CharVocab.build(TEXTS)
    vocab.extend("中")
    path = tmp_path / "vocab" / "chars.json"
    vocab.save(path)
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["type"] == "char" and data["tokens"] == vocab.tokens
    assert "中" in path.read_text(encoding="utf-8")  # written as UTF-8, not escaped
    loaded = CharVocab.load(path)
    assert loaded.tokens == vocab.tokens
    assert loaded.index == vocab.index
    for t in [*TEXTS, "中 ?"]:
        assert loaded.encode(t) == vocab.encode(t)
    assert [p.name for p in path.parent.iterdir()] == ["chars.json"]


def test_load_rejects_foreign_file(tmp_path: Path) -> None:
    path = tmp_path / "bpe.json"
    path.write_text(json.dumps({"type": "bpe", "tokens": ["<pad>", "a", "b"]}), encoding="utf-8")
    with pytest.raises(ValueError, match="not a character vocabulary"):
        CharVocab.load(path)


def test_specials_in_chars_are_not_duplicated() -> None:
    vocab = CharVocab([BLANK, "a", SPACE, UNK, "b"])
    assert vocab.tokens == [BLANK, UNK, SPACE, "a", "b"]
    assert vocab.encode("a b") == [3, 2, 4]


def test_turkish_casing() -> None:
    from text.normalize import normalize_transcript

    # Dotted capital İ never leaves a stray combining dot; Turkish capital I is dotless ı.
    assert normalize_transcript("İstanbul'da IŞIK var") == "istanbul'da işik var"
    assert normalize_transcript("İstanbul'da IŞIK var", "tur_Latn") == "istanbul'da ışık var"
    assert normalize_transcript("Ich bin IN Berlin", "deu_Latn") == "ich bin in berlin"
