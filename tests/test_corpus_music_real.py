"""The real-tune music corpus (corpus=music_real): tune books split on X:, headers read into the corpus's
attributes, broken tunes reported and skipped, held-out collections never in train_real, and the evaluation's
duplicate-aware scoring of descriptions that fit many tunes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import torch

from datamodules.corpus.music_real import MusicRealConfig, build_music_real, title_key
from datamodules.corpus.music_real_abc import TuneError, clean_tune, parse_key, parse_tune, split_tunes
from datamodules.corpus.music_text import LANGS

BOOK = """% A tune book: text before the first X: is the file's header
X:1
T:The Kesh -- Jig
Z:someone
M:6/8
L:1/8
Q:3/8=110
K:G
"G"GAG GAB|"D"ABA ABd|"_fine"edd gdd|edB dBA:|
w:la la la
X:2
T:Drowsy Maggie
R:reel
M:C|
L:1/8
K:Edor
|:E2BE dEBE|E2BE AFDF:|\\
|:E2BE dEBE|BABc dAFD:|
X:3
T:A Broken Reel
R:reel
M:4/4
L:1/8
X:4
T:Peacock Strathspey
M:C
K:A
A>B c>d|e2 a2|
X:5
T:Old Clog
M:2/4
K:none
% no notes at all
"""
HELD = """X:1
T:Drowsy Maggie
R:reel
M:C|
K:Edor
E2BE dEBE|E2BE AFDF|
X:2
T:Lark in the Morning
R:jig
M:6/8
L:1/8
Q:1/4=120
K:D
AFA AFA|BGB BdB|AFA AFA|fed BAG|
X:3
T:Staten Island
R:hornpipe
M:C|
L:1/8
K:D
fe|dfaf gfed|cABc dcBA|
X:4
T:The Lark in the Morning
R:jig
M:6/8
L:1/8
K:D
AFA AFA|BGB BdB|AFA AFA|fed BAG|
"""


def test_a_book_splits_on_x_and_headers_become_attributes() -> None:
    tunes = split_tunes(BOOK)
    assert [n for n, _ in tunes] == ["1", "2", "3", "4", "5"]
    assert split_tunes("T:Lone\nM:2/4\nK:D\nAB|") == [("1", "T:Lone\nM:2/4\nK:D\nAB|\n")]
    assert split_tunes("% only a comment\n") == []
    kesh = parse_tune(*tunes[0], "book")
    assert kesh.attributes == {"genre": "jig", "key": "G", "mode": "major", "meter": "6/8", "tempo": 110,
                               "tempo_word": "fast"}
    maggie = parse_tune(*tunes[1], "book")
    assert maggie.attributes == {"genre": "reel", "key": "E", "mode": "dorian", "meter": "2/2"}
    assert parse_key("Bbm") == ("Bb", "minor") and parse_key("A mix") == ("A", "mixolydian")
    assert parse_key("HP") is None and parse_key("D lydian") == ("D", "lydian")
    # Q:1/4=120 in 6/8 is 80 dotted crotchets a minute
    assert parse_tune(*split_tunes(HELD)[1]).attributes["tempo"] == 80


def test_broken_and_foreign_tunes_give_their_reason() -> None:
    tunes = split_tunes(BOOK)
    with pytest.raises(TuneError, match="no K:"):
        parse_tune(*tunes[2])
    with pytest.raises(TuneError, match="strathspey"):
        parse_tune(*tunes[3])
    with pytest.raises(TuneError, match="no notes"):
        parse_tune(*tunes[4])


def test_the_cleaned_tune_is_abc_the_suite_reads() -> None:
    from music.clamp.abc import check_abc
    from music.clamp.patches import abc_patches

    abc = clean_tune(parse_tune(*split_tunes(BOOK)[0]), 7)
    assert abc.startswith("X:7\nT:The Kesh\nR:jig\nM:6/8\nL:1/8\nQ:3/8=110\nK:G\n")
    assert '"G"' in abc and "fine" not in abc and "w:" not in abc and "Z:" not in abc
    check_abc(abc)
    assert any("GAG GAB|" in p for p in abc_patches(abc))
    joined = clean_tune(parse_tune(*split_tunes(BOOK)[1]), 1)
    assert "\\" not in joined and "AFDF:| |:E2BE" in joined
    assert title_key("The Kesh -- Jig") == title_key("KESH, THE") == "kesh"


@pytest.mark.skipif(shutil.which("abc2midi") is None, reason="abc2midi (Debian abcmidi) is needed")
def test_build_splits_reports_failures_and_never_trains_on_held_out_books(tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "book").mkdir(parents=True)
    (src / "held").mkdir()
    (src / "book" / "tunes.abc").write_text(BOOK, encoding="utf-8")
    more = "".join(f"X:{n}\nT:Reel Number {n}\nR:reel\nM:4/4\nL:1/8\nK:D\n|:d2fd {'AFDF' if n % 2 else 'ABde'}"
                   f"|d2fd edcB:|\n" for n in range(10, 30))
    (src / "book" / "more.abc").write_text(more, encoding="utf-8")
    (src / "held" / "held.abc").write_text(HELD, encoding="utf-8")
    cfg = MusicRealConfig(out_dir=str(tmp_path / "out"), source_dir=str(src),
                          collections={"book": "book", "held": "held"}, tune_collections=["book"], heldout=["held"],
                          test_fraction=0.5, workers=1)
    stats = build_music_real(cfg)
    out = tmp_path / "out"
    rows = {s: [json.loads(x) for x in (out / f"{s}.jsonl").read_text().splitlines()]
            for s in ("train_real", "test_real", "test_heldout")}
    assert rows["train_real"] and rows["test_real"]
    assert {r["collection"] for r in rows["train_real"] + rows["test_real"]} == {"book"}
    assert {r["collection"] for r in rows["test_heldout"]} == {"held"}
    trained = {title_key(r["title"]) for r in rows["train_real"]}
    assert not trained & {title_key(r["title"]) for r in rows["test_real"] + rows["test_heldout"]}
    # Drowsy Maggie is in both books: held out only when the book's copy went to test_real
    maggie_trained = title_key("Drowsy Maggie") in trained
    assert stats["dropped"] == {"heldout_namesakes": int(maggie_trained), "test_duplicates": 1}  # the second Lark
    failed = [json.loads(x) for x in (out / "failed.jsonl").read_text().splitlines()]
    reasons = {f["source"]: f["error"] for f in failed}
    assert "no K:" in reasons["book/tunes.abc:X3"] and "strathspey" in reasons["book/tunes.abc:X4"]
    assert "no notes" in reasons["book/tunes.abc:X5"]
    for row in rows["train_real"] + rows["test_real"] + rows["test_heldout"]:
        assert (out / row["midi"]).stat().st_size > 0
        assert set(row["texts"]) == set(LANGS)
        said = set(row["meaning"]["facets"])
        assert said == {f for f in ("key", "meter", "tempo") if f in row["attributes"]}
    kesh = next(r for s in rows.values() for r in s if r["title"].startswith("The Kesh"))
    assert "G major" in kesh["texts"]["eng_Latn"] and "6/8" in kesh["texts"]["eng_Latn"]
    # a re-run finds the finished corpus
    assert build_music_real(cfg) == json.loads((out / "corpus.json").read_text())


def _rows(attrs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"id": f"r{n}", "texts": {"eng_Latn": f"t{n}"}, "attributes": a, "stated": ["genre", "key", "mode"]}
            for n, a in enumerate(attrs)]


def test_duplicate_aware_retrieval_leaves_out_the_other_tunes_a_description_fits() -> None:
    from music.clamp.evaluation import Collector, chance_mrr, fits_of, retrieval_table, retrieve

    rows = _rows([{"genre": "reel", "key": "D", "mode": "major"}, {"genre": "reel", "key": "D", "mode": "major"},
                  {"genre": "jig", "key": "G", "mode": "major"}])
    fits = fits_of(rows)
    assert fits == {"r0": {"r1"}, "r1": {"r0"}, "r2": set()}
    c = Collector()
    ids = [r["id"] for r in rows]
    c.add_named("abc", ids, torch.eye(3))
    # r0's and r1's descriptions point at r1 first, r2's at r2
    c.add_named("text:eng_Latn", ids, torch.tensor([[0.0, 1.0, 0.5], [0.0, 1.0, 0.5], [0.0, 0.0, 1.0]]))
    plain = retrieve(c, "text:eng_Latn", "abc")
    assert plain is not None and plain["mrr"] == pytest.approx((1 / 3 + 1 + 1) / 3)
    filtered = retrieve(c, "text:eng_Latn", "abc", fits=fits)
    assert filtered is not None and filtered["mrr"] == pytest.approx((1 / 2 + 1 + 1) / 3)
    assert filtered["chance_mrr"] == pytest.approx((2 * chance_mrr(2) + chance_mrr(3)) / 3)
    anyfit = retrieve(c, "text:eng_Latn", "abc", fits=fits, any_fit=True)
    assert anyfit is not None and anyfit["hit@1"] == 1.0 and anyfit["chance_hit@1"] == pytest.approx(5 / 9)
    table = retrieval_table(c, fits)
    assert table["text_abc_fits/mean/mrr"] == pytest.approx(filtered["mrr"])


def test_zero_shot_reports_recall_per_class_and_takes_fixed_classes() -> None:
    from music.clamp.zeroshot import zero_shot_accuracy

    def embed(texts: list[str]) -> torch.Tensor:  # a prompt's vector: which of two words it holds
        return torch.tensor([[float("reel" in t), float("jig" in t), 0.1] for t in texts])

    music = torch.tensor([[1.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    rows = [{"genre": "reel"}, {"genre": "jig"}, {"genre": "jig"}]
    got = zero_shot_accuracy(embed, music, rows, "genre", templates={"genre": ["a {value}"]})
    assert got["accuracy"] == pytest.approx(2 / 3) and got["recall/jig"] == 0.5 and got["recall/reel"] == 1.0
    wide = zero_shot_accuracy(embed, music, rows, "genre", {"genre": ["a {value}"]}, classes=["jig", "reel", "waltz"])
    assert wide["classes"] == 3 and "recall/waltz" not in wide
    with pytest.raises(ValueError, match="not among the classes"):
        zero_shot_accuracy(embed, music, rows, "genre", {"genre": ["a {value}"]}, classes=["reel"])


def test_real_tunes_mix_into_training_and_the_real_splits_are_evaluated(tmp_path: Path) -> None:
    from omegaconf import OmegaConf

    from datamodules.music import MusicDataModule

    def manifest(name: str, n: int) -> str:
        rows = [{"id": f"{name}{i}", "abc": f"abc/{name}{i}.abc", "midi": f"midi/{name}{i}.mid",
                 "attributes": {"genre": "reel"}, "meaning": {"facets": []}, "texts": {"eng_Latn": "A reel."}}
                for i in range(n)]
        path = tmp_path / f"{name}.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
        return str(path)

    dm = MusicDataModule(manifest("gen", 4), manifest("dev", 2), extra_train=[manifest("real", 3)],
                         extra_train_repeat=2, batch_size=4)
    ids = [r["id"] for r in dm.rows("train")]
    assert ids[:4] == ["gen0", "gen1", "gen2", "gen3"] and sorted(ids[4:]) == ["real0", "real0", "real1", "real1",
                                                                                "real2", "real2"]
    assert [r["id"] for r in dm.rows("val")] == ["dev0", "dev1"]
    # a broken line of the extra manifest is reported and skipped; a missing one is named with its corpus command
    real = Path(manifest("real", 2))
    real.write_text(real.read_text(encoding="utf-8") + "{broken\n", encoding="utf-8")
    log = tmp_path / "bad.jsonl"
    dm = MusicDataModule(manifest("gen", 4), manifest("dev", 2), extra_train=[str(real)], batch_size=4,
                         bad_input_log=str(log))
    assert [r["id"] for r in dm.rows("train")] == ["gen0", "gen1", "gen2", "gen3", "real0", "real1"]
    reasons = [json.loads(line)["reason"] for line in log.read_text().splitlines()]
    assert len(reasons) == 1 and reasons[0].startswith("bad manifest line")
    dm = MusicDataModule(manifest("gen", 4), manifest("dev", 2), extra_train=[str(tmp_path / "none.jsonl")])
    with pytest.raises(FileNotFoundError, match=r"none\.jsonl does not exist .*corpus=music_real"):
        dm.rows("train")
    # the default data config evaluates the real-tune splits beside the generated ones
    cfg = OmegaConf.load(Path(__file__).parents[1] / "configs" / "data" / "music.yaml")
    extra = OmegaConf.to_container(cfg.extra_test, resolve=False)
    assert isinstance(extra, dict) and {"test_combo", "test_real", "test_heldout"} <= set(extra)
    assert str(extra["test_heldout"]).endswith("music_real/test_heldout.jsonl")


def test_make_corpus_finds_the_real_tune_builder(tmp_path: Path) -> None:
    from common.commands import CORPUS_BUILDERS
    from tests.helpers import compose_cfg

    assert CORPUS_BUILDERS.get("music_real") is build_music_real
    cfg = compose_cfg("make_corpus", ["corpus=music_real"], tmp_path)
    assert cfg.corpus.builder == "music_real" and cfg.corpus.heldout == ["oneills", "airds", "essen"]
