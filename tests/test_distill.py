"""text.distill / text.extend / scripts/extend_language.py: distillation pulls a new language onto the teacher."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from tests.helpers import load_script
from tests.text_data import write_tiny_corpus
from text.distill import embed
from text.extend import extend, read_pairs
from text.sentence_encoder import SentenceEncoder, from_pretrained, save_pretrained, sentence_encoder_tiny
from text.tokenizer import SentencePieceTokenizer


@pytest.fixture(autouse=True, scope="module")
def one_thread() -> Iterator[None]:
    """One intra-op thread: tiny models run several times faster than with two on a shared CPU."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A tiny corpus and a random-init teacher whose tokenizer never saw Turkish."""
    root = tmp_path_factory.mktemp("distill")
    corpus = write_tiny_corpus(root / "corpus", {"train": 120, "dev": 40})
    mono = [line for lang in ("eng_Latn", "deu_Latn", "ukr_Cyrl")
            for line in (corpus / "mono" / f"{lang}.txt").read_text(encoding="utf-8").splitlines()]
    tok = SentencePieceTokenizer.train(mono, root / "tok.model", vocab_size=300)
    torch.manual_seed(0)
    net = SentenceEncoder(sentence_encoder_tiny(vocab_size=len(tok), d_model=32, num_heads=2, ffn_dim=64,
                                                embed_dim=16, dropout=0.0))
    return corpus, save_pretrained(net, tok, root / "teacher", langs=["eng_Latn", "deu_Latn", "ukr_Cyrl"],
                                   held_out=["tur_Latn"])


def _distance(student: SentenceEncoder, teacher: SentenceEncoder, tok: SentencePieceTokenizer,
              pairs: list[tuple[str, str]]) -> float:
    goal = embed(teacher, tok, [s for s, _ in pairs], "eng_Latn")
    got = embed(student, tok, [t for _, t in pairs], "tur_Latn")
    return float((got - goal).pow(2).sum(-1).mean())


def test_distillation_reduces_student_teacher_distance(setup: tuple[Path, Path]) -> None:
    corpus, teacher_dir = setup
    train = read_pairs(corpus / "parallel" / "train.eng_Latn-tur_Latn.tsv")
    dev = read_pairs(corpus / "parallel" / "dev.eng_Latn-tur_Latn.tsv")
    teacher, tok = from_pretrained(teacher_dir)
    before = _distance(teacher, teacher, tok, dev)
    out = teacher_dir.parent / "student"
    report = extend(teacher_dir, "tur_Latn", train, out, steps=60, batch_size=32, lr=1e-3, dev=dev)
    assert report["pairs"] == len(train) and report["dev_before"].keys() == report["dev_after"].keys()
    student, _ = from_pretrained(out)
    after = _distance(student, teacher, tok, dev)
    assert after < 0.5 * before, (before, after)
    # English stays where the teacher put it (the source term of the loss).
    eng = [s for s, _ in dev]
    drift = (embed(student, tok, eng) - embed(teacher, tok, eng)).pow(2).sum(-1).mean()
    assert drift < before


def test_extend_language_script(setup: tuple[Path, Path], tmp_path: Path) -> None:
    corpus, teacher_dir = setup
    script = load_script("extend_language")
    tsv = corpus / "parallel" / "train.eng_Latn-tur_Latn.tsv"
    out = tmp_path / "extended"
    report = script.main([f"model={teacher_dir}", "lang=tur_Latn", f"parallel={tsv}", f"output={out}", "pairs=20",
                          "steps=3", f"dev={corpus / 'parallel' / 'dev.eng_Latn-tur_Latn.tsv'}"])
    assert report["pairs"] == 20 and "dev_after" in report
    config = json.loads((out / "config.json").read_text())
    assert config["model_type"] == "sentence_encoder" and "tur_Latn" in config["langs"]
    assert config["held_out"] == [] and config["extended"]["pairs"] == 20
    assert json.loads((out / "extend.json").read_text())["steps"] == 3
    from_pretrained(out)


def test_extend_errors(setup: tuple[Path, Path], tmp_path: Path) -> None:
    _, teacher_dir = setup
    script = load_script("extend_language")
    bad = tmp_path / "bad.tsv"
    bad.write_text("a cat\tbir kedi\nonly one column\n", encoding="utf-8")
    with pytest.raises(ValueError, match=rf"{bad}:2"):
        read_pairs(bad)
    with pytest.raises(SystemExit, match="missing argument"):
        script.main([f"model={teacher_dir}", "lang=tur_Latn"])
    with pytest.raises(SystemExit, match="key=value"):
        script.main(["model"])
    other = tmp_path / "other"
    other.mkdir()
    (other / "config.json").write_text('{"model_type": "bert"}')
    with pytest.raises(SystemExit, match="'bert' has no language extension"):
        script.main([f"model={other}", "lang=tur_Latn"])
