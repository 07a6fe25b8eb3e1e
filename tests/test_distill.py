"""text.distill / text.extend / scripts/extend_language.py: distillation pulls a new language onto the teacher."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import Callback

from common.fit import FitSettings
from common.runner import compose_and_run
from tests.helpers import load_script
from tests.text_data import write_tiny_corpus
from text.distill import embed
from text.extend import extend, new_language_student, piece_embeddings, read_pairs
from text.sentence_encoder import (
    SentenceEncoder,
    from_pretrained,
    save_pretrained,
    sentence_encoder_bag,
    sentence_encoder_tiny,
)
from text.tokenizer import EXTENSIONS_FILE, UNK_ID, SentencePieceTokenizer


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
              pairs: list[tuple[str, str]], student_tok: SentencePieceTokenizer | None = None) -> float:
    goal = embed(teacher, tok, [s for s, _ in pairs], "eng_Latn")
    got = embed(student, student_tok or tok, [t for _, t in pairs], "tur_Latn")
    return float((got - goal).pow(2).sum(-1).mean())


def test_distillation_reduces_student_teacher_distance(setup: tuple[Path, Path]) -> None:
    corpus, teacher_dir = setup
    train = read_pairs(corpus / "parallel" / "train.eng_Latn-tur_Latn.tsv")
    dev = read_pairs(corpus / "parallel" / "dev.eng_Latn-tur_Latn.tsv")
    teacher, tok = from_pretrained(teacher_dir)
    before = _distance(teacher, teacher, tok, dev)
    out = teacher_dir.parent / "student"
    report = extend(teacher_dir, "tur_Latn", train, out, steps=60, batch_size=32, dev=dev)
    assert report["pairs"] == len(train) and report["dev_before"].keys() == report["dev_after"].keys()
    assert report["new_pieces"] > 0 and report["update"] == "new"
    student, student_tok = from_pretrained(out)
    after = _distance(student, teacher, tok, dev, student_tok)
    assert after < 0.5 * before, (before, after)
    # English stays where the teacher put it (the source term of the loss).
    eng = [s for s, _ in dev]
    drift = (embed(student, tok, eng) - embed(teacher, tok, eng)).pow(2).sum(-1).mean()
    assert drift < before


def test_new_language_pieces_leave_old_languages_untouched(setup: tuple[Path, Path], tmp_path: Path) -> None:
    corpus, teacher_dir = setup
    teacher, base = from_pretrained(teacher_dir)
    pairs = read_pairs(corpus / "parallel" / "train.eng_Latn-tur_Latn.tsv")
    student, tok, n_new = new_language_student(teacher, base, "tur_Latn", pairs, tmp_path / "tok", new_pieces=400)
    assert n_new > 0 and len(tok) == len(base) + n_new == student.cfg.vocab_size
    old = ["a red cat", "eine rote Katze", "червоний кіт"]
    assert tok.encode(old) == base.encode(old) and tok.encode(old, "deu_Latn") == base.encode(old, "deu_Latn")
    turkish = [t for _, t in pairs[:5]]
    ids = tok.encode(turkish, "tur_Latn")
    assert all(UNK_ID not in row for row in ids) and max(max(row) for row in ids) >= len(base)
    assert sum(map(len, ids)) < sum(map(len, base.encode(turkish)))  # whole words instead of letters and bytes
    assert tok.decode(ids[0], "tur_Latn") == turkish[0].lower()  # case-folded by default
    with pytest.raises(ValueError, match="already has tur_Latn"):
        tok.extend("tur_Latn", turkish, tmp_path / "again")
    # The extension survives a save and reload with the model.
    out = save_pretrained(student, tok, tmp_path / "student")
    assert (out / EXTENSIONS_FILE).is_file()
    _, reloaded = from_pretrained(out)
    assert reloaded.encode(turkish, "tur_Latn") == ids and reloaded.encode(old) == base.encode(old)
    # A broken extension list or a missing extension model is an error naming the file.
    (out / "tokenizer.tur_Latn.model").unlink()
    with pytest.raises(FileNotFoundError, match=r"tokenizer\.tur_Latn\.model"):
        from_pretrained(out)
    (out / EXTENSIONS_FILE).write_text('{"tur_Latn": {"file": 3}}')
    with pytest.raises(ValueError, match=EXTENSIONS_FILE):
        from_pretrained(out)


def test_aligned_init_follows_cooccurring_source_piece(setup: tuple[Path, Path]) -> None:
    _, teacher_dir = setup
    teacher, base = from_pretrained(teacher_dir)
    cat, red = base.sp.encode("cat")[-1], base.sp.encode("red")[-1]
    # "▁kedi" occurs exactly where "cat" does; "▁kırmızı" where "red" does; "▁bir" everywhere.
    aligned = [([cat, red], ["▁bir", "▁kedi", "▁kırmızı"]), ([cat], ["▁bir", "▁kedi"]), ([red], ["▁bir", "▁kırmızı"])]
    rows = piece_embeddings(teacher, base, ["▁kedi", "▁kırmızı", "▁yok"], aligned, top_k=1)
    table = teacher.tok_emb.weight.detach()
    assert torch.equal(rows[0], table[cat]) and torch.equal(rows[1], table[red])
    spelled = base.sp.encode("yok")
    assert torch.allclose(rows[2], table[spelled].mean(0))  # never in the pairs: the pieces that spell it


def test_update_new_changes_only_new_rows(setup: tuple[Path, Path], tmp_path: Path) -> None:
    corpus, teacher_dir = setup
    pairs = read_pairs(corpus / "parallel" / "train.eng_Latn-tur_Latn.tsv")
    extend(teacher_dir, "tur_Latn", pairs, tmp_path / "student", steps=20, lr=1e-2, new_pieces=400)
    teacher, base = from_pretrained(teacher_dir)
    student, tok = from_pretrained(tmp_path / "student")
    t_state, s_state = teacher.state_dict(), student.state_dict()
    for name, value in t_state.items():
        got = s_state[name][: value.shape[0]] if name == "tok_emb.weight" else s_state[name]
        assert torch.equal(got, value), name
    assert not torch.equal(s_state["tok_emb.weight"][len(base):], piece_embeddings(
        teacher, base, tok.extensions["tur_Latn"].new_pieces))  # the new rows did learn
    eng = [s for s, _ in pairs[:8]]
    assert torch.equal(embed(student, tok, eng, "eng_Latn"), embed(teacher, base, eng, "eng_Latn"))


def test_extend_language_script(setup: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    corpus, teacher_dir = setup
    script = load_script("extend_language")
    tsv = corpus / "parallel" / "train.eng_Latn-tur_Latn.tsv"
    out = tmp_path / "extended"
    report = compose_and_run("extend_language", [
        f"model={teacher_dir}", "lang=tur_Latn", f"parallel={tsv}", f"output={out}", "pairs=20", "steps=3",
        f"dev={corpus / 'parallel' / 'dev.eng_Latn-tur_Latn.tsv'}"], script.run)
    assert report["pairs"] == 20 and "dev_after" in report
    config = json.loads((out / "config.json").read_text())
    assert config["model_type"] == "sentence_encoder" and "tur_Latn" in config["langs"]
    assert config["held_out"] == [] and config["extended"]["pairs"] == 20
    assert json.loads((out / "extend.json").read_text())["steps"] == 3
    student, tok = from_pretrained(out)
    # embed_text.py: the extended language's pieces need its code, and a run without one says so.
    lines = [t for _, t in read_pairs(tsv, 3)]
    (tmp_path / "tur.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    embed_script = load_script("embed_text")
    capsys.readouterr()
    embed_script.main([f"model={out}", f"input={tmp_path / 'tur.txt'}", f"output={tmp_path / 'plain.npy'}"])
    assert "pass lang=<code>" in capsys.readouterr().err
    rows = embed_script.main([f"model={out}", f"input={tmp_path / 'tur.txt'}", f"output={tmp_path / 'tur.npy'}",
                              "lang=tur_Latn"])
    assert "pass lang=<code>" not in capsys.readouterr().err
    assert torch.allclose(torch.from_numpy(rows), embed(student, tok, lines, "tur_Latn"), atol=1e-5)


def test_extend_errors(setup: tuple[Path, Path], tmp_path: Path) -> None:
    _, teacher_dir = setup
    script = load_script("extend_language")
    bad = tmp_path / "bad.tsv"
    bad.write_text("a cat\tbir kedi\nonly one column\n", encoding="utf-8")
    with pytest.raises(ValueError, match=rf"{bad}:2"):
        read_pairs(bad)
    with pytest.raises(SystemExit, match="missing argument"):
        compose_and_run("extend_language", [f"model={teacher_dir}", "lang=tur_Latn"], script.run)
    with pytest.raises(SystemExit, match="lang= required"):
        compose_and_run("extend_language", [f"model={teacher_dir}"], script.run)
    with pytest.raises(SystemExit, match="'model'"):
        compose_and_run("extend_language", ["model"], script.run)
    other = tmp_path / "other"
    other.mkdir()
    (other / "config.json").write_text('{"model_type": "bert"}')
    with pytest.raises(SystemExit, match="'bert' has no language extension"):
        compose_and_run("extend_language", [f"model={other}", "lang=tur_Latn"], script.run)
    tsv = tmp_path / "good.tsv"
    tsv.write_text("a cat\tbir kedi\n", encoding="utf-8")
    with pytest.raises(FileNotFoundError, match=r"missing\.txt"):
        compose_and_run("extend_language", [f"model={teacher_dir}", "lang=tur_Latn", f"parallel={tsv}",
                                            f"output={tmp_path / 'o'}", f"mono={tmp_path / 'missing.txt'}"], script.run)
    with pytest.raises(ValueError, match="update must be"):
        extend(teacher_dir, "tur_Latn", read_pairs(tsv), update="some")


class _AtStart(Callback):
    """Records the step and optimiser state a run starts from (after any checkpoint was restored)."""

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.step = trainer.global_step
        self.optim = copy.deepcopy(trainer.optimizers[0].state_dict())
        self.weights = {k: v.clone() for k, v in pl_module.state_dict().items()}


def test_resume_continues_at_the_saved_step(setup: tuple[Path, Path], tmp_path: Path) -> None:
    corpus, teacher_dir = setup
    pairs = read_pairs(corpus / "parallel" / "train.eng_Latn-tur_Latn.tsv", 24)
    run = tmp_path / "run"
    first = extend(teacher_dir, "tur_Latn", pairs, tmp_path / "a", steps=4, batch_size=8, new_pieces=0,
                   fit=FitSettings(run_dir=str(run)))
    ckpt = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    assert ckpt["global_step"] == 4 and first["steps"] == 4
    with pytest.raises(SystemExit, match="resume=last"):
        extend(teacher_dir, "tur_Latn", pairs, steps=8, batch_size=8, new_pieces=0, fit=FitSettings(run_dir=str(run)))
    probe = _AtStart()
    extend(teacher_dir, "tur_Latn", pairs, tmp_path / "b", steps=8, batch_size=8, new_pieces=0,
           fit=FitSettings(run_dir=str(run), resume="last", callbacks=[probe]))
    assert probe.step == 4
    saved = ckpt["optimizer_states"][0]["state"]
    assert saved and probe.optim["state"].keys() == saved.keys()
    for i, s in saved.items():
        assert all(torch.equal(probe.optim["state"][i][k], v) for k, v in s.items())
    # The resumed student starts from the checkpoint's weights, which training had moved off the teacher's.
    assert all(torch.equal(probe.weights[k], v) for k, v in ckpt["state_dict"].items())
    assert not torch.equal(ckpt["state_dict"]["student.tok_emb.weight"], ckpt["state_dict"]["teacher.tok_emb.weight"])
    assert torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == 8


def test_a_bag_encoder_extends_into_its_own_rows(setup: tuple[Path, Path], tmp_path: Path) -> None:
    """An n-gram bag teacher: the new language's n-grams and pairs hash into a block of their own, which alone
    learns; every old language embeds bit for bit as before, and the block survives saving and loading."""
    corpus, tiny_dir = setup
    _, tok = from_pretrained(tiny_dir)
    torch.manual_seed(0)
    net = SentenceEncoder(sentence_encoder_bag(vocab_size=len(tok), bag_buckets=4096, embed_dim=16, dropout=0.0))
    net.set_pieces([tok.sp.id_to_piece(i) for i in range(tok.sp.get_piece_size())])
    teacher_dir = save_pretrained(net, tok, tmp_path / "bag", langs=["eng_Latn", "deu_Latn"], held_out=["tur_Latn"])
    pairs = read_pairs(corpus / "parallel" / "train.eng_Latn-tur_Latn.tsv")
    teacher, base = from_pretrained(teacher_dir)
    before = _distance(teacher, teacher, base, pairs)
    report = extend(teacher_dir, "tur_Latn", pairs, tmp_path / "student", steps=60, lr=3e-2, new_pieces=300,
                    bag_rows=512)
    student, stok = from_pretrained(tmp_path / "student")
    assert student.cfg.bag_blocks == ((len(base), 512),) and report["new_pieces"] > 0
    s_state = student.state_dict()
    for name, value in teacher.state_dict().items():
        got = s_state[name][: value.shape[0]] if name in ("tok_emb.weight", "bag.table") else s_state[name]
        assert torch.equal(got, value), name
    assert student.bag is not None and student.bag.extra is not None and student.bag.extra.weight.abs().sum() > 0
    new_rows = student.bag.table[len(base):]
    assert bool(((new_rows == -1) | (new_rows >= 4096)).all())  # the new pieces read their block only
    for lang, texts in (("eng_Latn", [s for s, _ in pairs[:8]]), ("deu_Latn", ["Der Hund", "Die Katze schläft"])):
        assert torch.equal(embed(student, stok, texts, lang), embed(teacher, base, texts, lang)), lang
    assert _distance(student, teacher, base, pairs, stok) < before / 2
