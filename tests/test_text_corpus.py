"""Parallel text corpus: grammar agreement, scripts, determinism, split hygiene, the make_corpus entry point."""

from __future__ import annotations

import json
import unicodedata
from pathlib import Path

import pytest

from datamodules.corpus.grammar.meaning import Clause, Entity, Meaning
from datamodules.corpus.grammar.realise import REALISERS, realise
from datamodules.corpus.grammar.sampler import MeaningSampler
from datamodules.corpus.text import TextCorpusConfig, build_text_corpus, sample_splits
from tests.helpers import compose_cfg, load_script

SCRIPT = {"Latn": "LATIN", "Cyrl": "CYRILLIC", "Deva": "DEVANAGARI", "Arab": "ARABIC"}


def _m(*clauses: Clause) -> Meaning:
    return Meaning(tuple(clauses), "medium")


RED_CUP_ON_TABLE = _m(Clause(Entity("cup", 1, "red", None, True), "stand", "on", Entity("table", 1, None, None, True)))


def test_german_definite_subject_and_dative_ground() -> None:
    assert realise(RED_CUP_ON_TABLE, "deu_Latn") == "Die rote Tasse steht auf dem Tisch."
    m = _m(Clause(Entity("ball", 1, "blue"), "lie", "under", Entity("bed", 1, "white", "small", True)))
    assert realise(m, "deu_Latn") == "Unter dem kleinen weißen Bett liegt ein blauer Ball."
    m = _m(Clause(Entity("dog", 2, None, "small"), "sleep"))
    assert realise(m, "deu_Latn") == "Zwei kleine Hunde schlafen."


def test_romance_agreement_and_contractions() -> None:
    m = _m(Clause(Entity("cup", 3, "red", "small"), "stand", "next_to", Entity("tree", 1, None, None, True)))
    assert realise(m, "spa_Latn") == "Al lado del árbol hay tres tazas rojas pequeñas."
    assert realise(m, "fra_Latn") == "À côté de l'arbre il y a trois petites tasses rouges."
    assert realise(m, "ita_Latn") == "Accanto all'albero ci sono tre piccole tazze rosse."
    assert realise(RED_CUP_ON_TABLE, "ita_Latn") == "La tazza rossa è sul tavolo."
    assert realise(RED_CUP_ON_TABLE, "fra_Latn") == "La tasse rouge est sur la table."


def test_slavic_case_after_prepositions_and_numerals() -> None:
    assert realise(RED_CUP_ON_TABLE, "rus_Cyrl") == "Красная чашка стоит на столе."
    assert realise(RED_CUP_ON_TABLE, "ukr_Cyrl") == "Червона чашка стоїть на столі."
    m = _m(Clause(Entity("dog", 5, "black"), "sleep", "next_to", Entity("chair", 1, None, None, True)))
    assert realise(m, "rus_Cyrl") == "Пять чёрных собак спят рядом со стулом."
    m = _m(Clause(Entity("ball", 2, "red"), "lie", "under", Entity("bed", 1, None, "big", True)))
    assert realise(m, "rus_Cyrl") == "Под большой кроватью лежат два красных мяча."
    assert realise(m, "ukr_Cyrl") == "Під великим ліжком лежать два червоні м'ячі."


def test_hindi_and_arabic_agreement() -> None:
    assert realise(RED_CUP_ON_TABLE, "hin_Deva") == "लाल कप मेज़ पर रखा है।"
    m = _m(Clause(Entity("dog", 2, None, "small"), "sleep", "under", Entity("tree", 1, None, None, True)))
    assert realise(m, "hin_Deva") == "दो छोटे कुत्ते पेड़ के नीचे सो रहे हैं।"
    assert realise(m, "arb_Arab") == "ينام كلبان صغيران تحت الشجرة."
    m = _m(Clause(Entity("cat", 3, "black"), "sleep"))
    assert realise(m, "arb_Arab") == "تنام ثلاث قطط سوداء."
    assert realise(RED_CUP_ON_TABLE, "arb_Arab") == "الكوب الأحمر على الطاولة."


def test_turkish_and_swahili() -> None:
    m = _m(Clause(Entity("cup", 1, "red"), "stand", "on", Entity("table", 1, None, None, True)))
    assert realise(m, "tur_Latn") == "Masanın üstünde kırmızı bir fincan duruyor."
    assert realise(m, "swh_Latn") == "Juu ya meza kuna kikombe chekundu."
    assert realise(RED_CUP_ON_TABLE, "swh_Latn") == "Kikombe chekundu kiko juu ya meza."
    m = _m(Clause(Entity("dog", 2, "black", "small"), "sleep", "under", Entity("tree", 1, None, None, True)))
    assert realise(m, "tur_Latn") == "İki küçük siyah köpek ağacın altında uyuyor."
    assert realise(m, "swh_Latn") == "Mbwa wawili wadogo weusi wanalala chini ya mti."
    m = _m(Clause(Entity("book", 3, None, "big"), "lie", "next_to", Entity("stone", 1, "white", None, True)))
    assert realise(m, "swh_Latn") == "Kando ya jiwe jeupe kuna vitabu vitatu vikubwa."


def test_transitive_objects_take_the_accusative() -> None:
    m = _m(Clause(Entity("girl", 1, None, None, True), "hold", object=Entity("ball", 1, "red")))
    assert realise(m, "deu_Latn") == "Das Mädchen hält einen roten Ball."
    assert realise(m, "arb_Arab") == "تمسك البنت كرة حمراء."
    m = _m(Clause(Entity("boy", 1, None, None, True), "hold", object=Entity("cup", 1, "blue", None, True)))
    assert realise(m, "rus_Cyrl") == "Мальчик держит синюю чашку."
    assert realise(m, "ukr_Cyrl") == "Хлопчик тримає синю чашку."
    assert realise(m, "tur_Latn") == "Oğlan mavi fincanı tutuyor."
    m = _m(Clause(Entity("man", 1), "hold", object=Entity("book", 1, None, "big")))
    assert realise(m, "arb_Arab") == "يمسك رجل كتابا كبيرا."
    assert realise(m, "hin_Deva") == "एक आदमी एक बड़ी किताब पकड़े हुए है।"


def test_long_sentence_with_anaphora() -> None:
    m = Meaning((Clause(Entity("cup", 1, "red"), "stand", "on", Entity("table", 1, None, None, True)),
                 Clause(Entity("dog", 2, None, "small"), "sleep", "next_to")), "long")
    assert realise(m, "eng_Latn") == "A red cup stands on the table, and next to it two small dogs are sleeping."
    assert realise(m, "deu_Latn") == "Auf dem Tisch steht eine rote Tasse, und daneben schlafen zwei kleine Hunde."
    assert realise(m, "rus_Cyrl") == "На столе стоит красная чашка, и рядом с ним спят две маленькие собаки."
    assert Meaning.from_json(json.loads(json.dumps(m.to_json()))) == m
    held = Meaning((Clause(Entity("man", 2), "hold", "behind", object=Entity("pen", 3, "red")),), "medium")
    assert Meaning.from_json(json.loads(json.dumps(held.to_json()))) == held


@pytest.mark.parametrize("lang", sorted(REALISERS))
def test_every_language_realises_sampled_meanings_in_its_script(lang: str) -> None:
    sampler = MeaningSampler(3)
    want = SCRIPT[lang.split("_")[1]]
    for _ in range(300):
        text = realise(sampler.sample(), lang)
        assert text and "  " not in text and "None" not in text
        letters = [c for c in text if unicodedata.category(c)[0] == "L"]
        assert letters and all(unicodedata.name(c).startswith(want) for c in letters), text


def test_incomplete_lexicon_is_named_in_the_error() -> None:
    from datamodules.corpus.grammar.lang_deu import German
    from datamodules.corpus.grammar.realise import load_lexicon

    lex = load_lexicon("deu_Latn")
    del lex["nouns"]["cup"]
    with pytest.raises(ValueError, match=r"lexicon/deu_Latn.json: missing entries.*cup"):
        German(lex)


def test_sampler_is_deterministic_and_mixes_lengths() -> None:
    s1, s2 = MeaningSampler(7), MeaningSampler(7)
    assert [s1.sample().key() for _ in range(50)] == [s2.sample().key() for _ in range(50)]
    s = MeaningSampler(1)
    counts = {k: 0 for k in ("short", "medium", "long")}
    for _ in range(1000):
        counts[s.sample().length] += 1
    assert 300 < counts["short"] < 500 and 300 < counts["medium"] < 500 and 120 < counts["long"] < 280


def test_splits_do_not_leak() -> None:
    splits = sample_splits(TextCorpusConfig(train=400, dev=50, test=80, seed=1))
    train_keys = {m.key() for m, _ in splits["train"]}
    train_eng = {t["eng_Latn"] for _, t in splits["train"]}
    for split in ("dev", "test"):
        for m, texts in splits[split]:
            assert m.key() not in train_keys and texts["eng_Latn"] not in train_eng
            assert set(texts) == set(REALISERS)


def test_build_writes_aligned_files_and_resumes(tmp_path: Path) -> None:
    cfg = TextCorpusConfig(out_dir=str(tmp_path / "text"), train=60, dev=10, test=20, mono_phrases=5)
    stats = build_text_corpus(TextCorpusConfig(**{**cfg.__dict__, "overwrite": True}))
    root = tmp_path / "text"
    rows = [json.loads(line) for line in (root / "parallel" / "dev.jsonl").read_text().splitlines()]
    assert len(rows) == 10 and stats["splits"]["train"]["meanings"] == 60
    for lang in REALISERS:
        lines = (root / "parallel" / f"dev.{lang}.txt").read_text(encoding="utf-8").splitlines()
        assert lines == [r["texts"][lang] for r in rows]
        if lang != "eng_Latn":
            tsv = (root / "parallel" / f"test.eng_Latn-{lang}.tsv").read_text(encoding="utf-8").splitlines()
            assert len(tsv) == 20 and all(len(line.split("\t")) == 2 for line in tsv)
        assert (root / "mono" / f"{lang}.txt").stat().st_size > 0
    before = (root / "stats.json").stat().st_mtime_ns
    again = build_text_corpus(cfg)
    assert again["splits"] == json.loads(json.dumps(stats["splits"]))
    assert (root / "stats.json").stat().st_mtime_ns == before
    with pytest.raises(FileExistsError, match="overwrite=true"):
        build_text_corpus(TextCorpusConfig(out_dir=str(tmp_path / "text"), train=61, dev=10, test=20))
    first = (root / "parallel" / "train.deu_Latn.txt").read_text(encoding="utf-8")
    build_text_corpus(TextCorpusConfig(out_dir=str(tmp_path / "b"), train=60, dev=10, test=20, mono_phrases=5))
    assert (tmp_path / "b" / "parallel" / "train.deu_Latn.txt").read_text(encoding="utf-8") == first


def test_make_corpus_runs_with_corpus_text(tmp_path: Path) -> None:
    cfg = compose_cfg("make_corpus", ["corpus=text", f"corpus.out_dir={tmp_path}/t", "corpus.train=30",
                                      "corpus.dev=5", "corpus.test=5", "corpus.mono_phrases=0"], tmp_path)
    load_script("make_corpus").main.__wrapped__(cfg)
    stats = json.loads((tmp_path / "t" / "stats.json").read_text(encoding="utf-8"))
    assert stats["splits"]["test"]["meanings"] == 5 and len(stats["langs"]) >= 8
