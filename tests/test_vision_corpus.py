"""corpus=vision: held-out attribute combinations, captions in every language, and shards equal to the folder form."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from common.commands import CORPUS_BUILDERS
from datamodules.corpus.vision import SPLITS, VisionCorpusConfig, build_vision_corpus
from datamodules.corpus.vision_captions import LANGS, captions, lexicon, shape_forms
from datamodules.corpus.vision_scenes import holdout_pairs, scene_pairs
from datamodules.image_text import image_text_rows
from tests.vision_data import write_tiny_vision_corpus


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_vision_corpus(tmp_path_factory.mktemp("vision"))


def _rows(root: Path, split: str) -> list[dict[str, Any]]:
    lines = (root / "folder" / split / "captions.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


def _colour_marks(lang: str, colour: str) -> list[str]:
    """Strings one of which any agreeing form of ``colour`` contains (a stem where endings vary)."""
    entry = lexicon(lang)["colours"][colour]
    if isinstance(entry, str):
        return [entry]
    if len(entry) == 4:  # Romance: every agreeing form
        return list(entry)
    word, inflects = entry
    return [word[:-1] if lang == "hin_Deva" and inflects is True else word]


def test_registered_and_held_out_pairs_never_in_training(corpus: Path) -> None:
    assert CORPUS_BUILDERS.get("vision") is build_vision_corpus
    stats = json.loads((corpus / "stats.json").read_text())
    held = {(p["colour"], p["shape"]) for p in stats["held_out_pairs"]}
    assert held == set(holdout_pairs(8, 0)) and len(held) == 8
    keys: set[str] = set()
    for split in SPLITS:
        rows = _rows(corpus, split)
        assert len(rows) == stats["splits"][split]["images"] == {"train": 40}.get(split, 12)
        for r in rows:
            pairs = scene_pairs(r["attributes"])
            if split == "train" or split == "test_seen":
                assert not pairs & held, (split, r["id"])
            else:  # every held-out image shows a combination training never saw
                assert pairs & held, (split, r["id"])
            keys.add(json.dumps(r["attributes"], sort_keys=True))
    assert len(keys) == sum(len(_rows(corpus, s)) for s in SPLITS)  # no scene twice, across splits either
    # Every evaluation short caption retrieves exactly one image, and training never shows it.
    shorts = [r["captions"][lang]["short"] for s in ("dev", "test", "test_seen") for r in _rows(corpus, s)
              for lang in ("eng_Latn", "rus_Cyrl")]
    train = {r["captions"]["eng_Latn"]["short"] for r in _rows(corpus, "train")}
    assert len(set(shorts)) == len(shorts) and not train & set(shorts)


def test_captions_in_every_language_name_the_right_colours_and_shapes(corpus: Path) -> None:
    for r in _rows(corpus, "dev")[:6] + _rows(corpus, "train")[:6]:
        assert set(r["captions"]) == set(LANGS)
        for lang in LANGS:
            short, long = r["captions"][lang]["short"], r["captions"][lang]["long"]
            assert short.strip() and long.strip() and len(long) > len(short) * 0.9
            for obj in r["attributes"]["objects"]:
                assert any(f in long for f in shape_forms(lang, obj["shape"])), (lang, obj, long)
                assert any(m in long for m in _colour_marks(lang, obj["colour"])), (lang, obj, long)


def test_caption_grammar_agrees() -> None:
    scene = {"objects": [
        {"shape": "circle", "colour": "red", "size": "big", "texture": "striped", "position": "left", "count": 1},
        {"shape": "star", "colour": "blue", "size": "small", "texture": "solid", "position": "right", "count": 3}],
        "relations": [{"subject": 1, "relation": "right_of", "ground": 0}]}
    out = captions(scene)
    assert out["eng_Latn"]["short"] == "A big red circle is on the left, and three small blue stars are on the right."
    assert out["eng_Latn"]["long"].endswith(" Three small blue stars are to the right of a big red circle.")
    assert out["eng_Latn"]["long"].startswith("A big red circle is on the left, and the red circle is striped.")
    assert out["deu_Latn"]["long"].endswith("Rechts neben dem großen roten Kreis sind drei kleine blaue Sterne.")
    assert "Три маленькие синие звезды справа, и три синие звезды однотонные." in out["rus_Cyrl"]["long"]
    assert "tres estrellas azules pequeñas están a la derecha" in out["spa_Latn"]["long"].lower()
    assert "trois petites étoiles bleues sont à droite, et trois étoiles bleues sont unies" in \
        out["fra_Latn"]["long"].lower()


def test_shards_hold_the_same_rows_as_the_folder_form(corpus: Path) -> None:
    for split in ("train", "test"):
        folder = {r["id"]: r for r in image_text_rows(corpus / "folder" / split)}
        shards = {r["id"]: r for r in image_text_rows(corpus / "shards" / split)}
        assert folder.keys() == shards.keys() and len(folder) == len(_rows(corpus, split))
        for rid, row in folder.items():
            for key in ("captions", "attributes", "split", "image_bytes"):
                assert shards[rid][key] == row[key], (rid, key)
        index = json.loads((corpus / "shards" / split / "shards.json").read_text())
        assert index["samples"] == len(folder) and len(index["shards"]) == -(-len(folder) // 16)


def test_rebuild_skips_same_config_and_refuses_another(corpus: Path) -> None:
    cfg = VisionCorpusConfig(out_dir=str(corpus), train=40, dev=12, test=12, test_seen=12, image_size=32,
                             shard_size=16)
    before = (corpus / "folder" / "train" / "captions.jsonl").stat().st_mtime_ns
    assert build_vision_corpus(cfg)["splits"]["train"]["images"] == 40
    assert (corpus / "folder" / "train" / "captions.jsonl").stat().st_mtime_ns == before
    cfg.train = 41
    with pytest.raises(FileExistsError, match="another config"):
        build_vision_corpus(cfg)
