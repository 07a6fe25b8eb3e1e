"""Dictionary rows for the sentence encoder (datamodules/corpus/text_dict.py): CC-CEDICT's senses cleaned, held-out
and reserved text kept out, the make_corpus entry point."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from datamodules.corpus import text_dict
from datamodules.corpus.text_dict import DictCorpusConfig, build_dict_corpus, cedict_entries, clean_sense
from tests.test_text_real import write_mo

CEDICT = """# CC-CEDICT
#! license=https://creativecommons.org/licenses/by-sa/4.0/
發票 发票 [fa1 piao4] /invoice; receipt; bill/uniform invoice (abbr. for 統一發票|统一发票[tong3 yi1 fa1 piao4])/
餘額 余额 [yu2 e2] /balance (of an account, bill etc)/surplus/remainder/
個 个 [ge4] /CL:個|个[ge4]/variant of 箇|个[ge4]/
王 王 [Wang2] /surname Wang/
打開 打开 [da3 kai1] /to open/to switch on/
AA制 AA制 [A A zhi4] /to split the bill/
表 表 [biao3] /Open the file/
this line is broken
"""


def _fake_cedict(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "cedict_test.txt.gz"
    with gzip.open(path, "wt", encoding="utf-8") as f:
        f.write(CEDICT)
    monkeypatch.setattr(text_dict, "cedict_path", lambda: path)


def test_senses_are_cleaned_and_cross_references_dropped(tmp_path: Path) -> None:
    assert clean_sense("balance (of an account, bill etc)", 6) == "balance"
    assert clean_sense("uniform invoice (abbr. for 統一發票|统一发票[tong3 yi1 fa1 piao4])", 6) == "uniform invoice"
    assert clean_sense("CL:個|个[ge4]", 6) is None and clean_sense("surname Wang", 6) is None
    assert clean_sense("variant of 箇|个[ge4]", 6) is None
    assert clean_sense("one two three four five six seven", 6) is None
    path = tmp_path / "c.txt.gz"
    with gzip.open(path, "wt", encoding="utf-8") as f:
        f.write(CEDICT)
    assert list(cedict_entries(path, max_senses=2)) == [
        ("发票", "invoice; receipt; bill"), ("发票", "uniform invoice"), ("余额", "balance"), ("余额", "surplus"),
        ("打开", "to open"), ("打开", "to switch on"), ("AA制", "to split the bill"), ("表", "Open the file")]


def test_build_keeps_heldout_and_reserved_text_out(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_cedict(tmp_path, monkeypatch)
    ood = tmp_path / "test_ood.jsonl"
    ood.write_text(json.dumps({"texts": {"eng_Latn": "Surplus", "deu_Latn": "Überschuss"}}) + "\n", encoding="utf-8")
    system = tmp_path / "locale"
    write_mo(system / "de/LC_MESSAGES/core.mo", {"Open the file": "Datei öffnen"})
    cfg = DictCorpusConfig(out_dir=str(tmp_path / "out"), exclude=[str(ood)], system_locale_dir=str(system))
    stats = build_dict_corpus(cfg)
    rows = [json.loads(line) for line in (tmp_path / "out/parallel/train.jsonl").open(encoding="utf-8")]
    english = [r["texts"]["eng_Latn"] for r in rows]
    assert "surplus" not in english and "Open the file" not in english  # the OOD test's, the system's
    assert "balance" in english and all(set(r["texts"]) == {"eng_Latn", "cmn_Hans"} for r in rows)
    assert stats["splits"]["train"]["rows"] == len(rows) == 6
    assert stats["sources"][0]["licence"].startswith("CC-BY-SA-4.0")
    assert stats["sources"][0]["errors"] == [f"{tmp_path / 'cedict_test.txt.gz'}:10: not a CEDICT entry "
                                             "(traditional simplified [pinyin] /senses/)"]
    assert build_dict_corpus(cfg) == stats  # built: kept as it is


def test_the_packaged_dictionary_reads() -> None:
    entries = dict(cedict_entries(text_dict.cedict_path(), max_senses=1))
    assert len(entries) > 90_000 and entries["发票"].startswith("invoice")


def test_a_corrupt_dictionary_or_a_missing_test_manifest_is_named(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    bad = tmp_path / "cedict_bad.txt.gz"
    bad.write_bytes(b"not gzip at all")
    with pytest.raises(ValueError, match=r"cedict_bad\.txt\.gz: not a readable gzipped CC-CEDICT file"):
        list(cedict_entries(bad))
    _fake_cedict(tmp_path, monkeypatch)
    cfg = DictCorpusConfig(out_dir=str(tmp_path / "out"), exclude=[str(tmp_path / "gone.jsonl")],
                           system_locale_dir=str(tmp_path / "locale"))
    with pytest.raises(FileNotFoundError, match=r"gone\.jsonl"):
        build_dict_corpus(cfg)
    assert not (tmp_path / "out" / "stats.json").exists()
