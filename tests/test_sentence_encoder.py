"""text.tokenizer / text.sentence_encoder / common.losses: byte fallback, the tower interface, the ranking loss."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from common.losses import ContrastiveLoss, text_keys, translation_ranking_loss
from tests.text_data import LEXICON
from text.sentence_encoder import SentenceEncoder, from_pretrained, save_pretrained, sentence_encoder_tiny
from text.tokenizer import UNK_ID, SentencePieceTokenizer
from text.towers import SentenceEncoderTower, TextTowerConfig, build_text_tower

TRAIN_TEXTS = [" ".join(words[i : i + 4]) for words in LEXICON.values() for i in range(0, 12)] * 3
BATCH = ["cat dog house", "Katze", "кіт пес дім річка зелений малий біжить", "नमस्ते दुनिया", "cat"]


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory: pytest.TempPathFactory) -> SentencePieceTokenizer:
    path = tmp_path_factory.mktemp("tok") / "tokenizer.model"
    return SentencePieceTokenizer.train(TRAIN_TEXTS, path, vocab_size=400, langs=["deu_Latn"])


@pytest.fixture(scope="module")
def model_dir(tokenizer: SentencePieceTokenizer, tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    net = SentenceEncoder(sentence_encoder_tiny(vocab_size=len(tokenizer), d_model=32, num_heads=2, ffn_dim=64,
                                                embed_dim=16, dropout=0.1))
    return save_pretrained(net, tokenizer, tmp_path_factory.mktemp("enc") / "model", langs=["eng_Latn"])


def test_byte_fallback_covers_unseen_script(tokenizer: SentencePieceTokenizer) -> None:
    unseen = ["नमस्ते दुनिया", "გამარჯობა", "你好世界"]  # Devanagari, Georgian, Han: none in the training text
    for text, ids in zip(unseen, tokenizer.encode(unseen)):
        assert UNK_ID not in ids
        assert tokenizer.decode(ids) == text
    assert any(p.startswith("<0x") for p in (tokenizer.sp.id_to_piece(i) for i in tokenizer.encode(unseen)[0]))


def test_load_or_train_trains_once_then_loads_without_reading_text(tmp_path: Path) -> None:
    path = tmp_path / "tok" / "tokenizer.model"
    calls: list[int] = []

    def texts() -> list[str]:
        calls.append(1)
        return TRAIN_TEXTS

    first = SentencePieceTokenizer.load_or_train(path, texts, 300, langs=["deu_Latn"])
    again = SentencePieceTokenizer.load_or_train(path, texts, 300, langs=["deu_Latn"])
    assert calls == [1] and path.is_file()
    assert again.encode(BATCH, lang="deu_Latn") == first.encode(BATCH, lang="deu_Latn")
    with pytest.raises(ValueError, match="no text"):
        SentencePieceTokenizer.load_or_train(tmp_path / "empty.model", list, 300)


def test_language_tokens_and_padding(tokenizer: SentencePieceTokenizer) -> None:
    assert tokenizer.langs == ["deu_Latn"]
    plain, tagged = tokenizer.encode(["Katze"])[0], tokenizer.encode(["Katze"], lang="deu_Latn")[0]
    assert tagged[1:] == plain and tokenizer.sp.id_to_piece(tagged[0]) == "<deu_Latn>"
    assert tokenizer.encode(["Katze"], lang="tur_Latn")[0] == plain  # an unknown language adds no token
    long = "кіт пес дім річка зелений малий біжить спить"
    ids, mask = tokenizer.batch(["cat", long], max_length=6)
    assert ids.shape == mask.shape == (2, 6) and mask[0].sum() < mask[1].sum() == 6
    assert ids[1, -1] == 3  # a cut text still ends with </s>
    assert (ids[~mask] == tokenizer.pad_id).all()


def test_tower_interface(model_dir: Path) -> None:
    tower = build_text_tower(TextTowerConfig(kind="sentence_encoder", path=str(model_dir)))
    assert isinstance(tower, SentenceEncoderTower) and tower.output_dim == 16
    tower.train()
    assert not tower.model.training  # frozen by default: dropout stays off
    emb = tower.encode(BATCH, batch_size=2)
    assert emb.shape == (len(BATCH), 16) and emb.dtype == torch.float32 and not emb.requires_grad
    torch.testing.assert_close(emb.norm(dim=-1), torch.ones(len(BATCH)))
    torch.testing.assert_close(emb, tower.encode(BATCH, batch_size=len(BATCH)), atol=1e-5, rtol=0)
    for i, text in enumerate(BATCH):
        torch.testing.assert_close(tower.encode([text])[0], emb[i], atol=1e-5, rtol=0)
    assert all(p.grad is None and not p.requires_grad for p in tower.model.parameters())


def test_projection_is_trainable_and_normalised(model_dir: Path) -> None:
    tower = build_text_tower(TextTowerConfig(kind="sentence_encoder", path=str(model_dir), proj_dim=8))
    out = tower(["cat dog", "Katze Hund"])
    torch.testing.assert_close(out.norm(dim=-1), torch.ones(2))
    out.sum().backward()
    assert tower.proj.weight.grad is not None  # type: ignore[union-attr]
    assert all(p.grad is None for p in tower.model.parameters())


def test_save_load_roundtrip(model_dir: Path, tmp_path: Path) -> None:
    model, tok = from_pretrained(model_dir)
    ids, mask = tok.batch(BATCH)
    again, _ = from_pretrained(save_pretrained(model, tok, tmp_path / "copy"))
    torch.testing.assert_close(model(ids, mask), again(ids, mask))
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "config.json").write_text('{"model_type": "bert"}')
    with pytest.raises(ValueError, match="sentence_encoder"):
        from_pretrained(bad)


def test_ranking_loss_by_hand() -> None:
    torch.manual_seed(0)
    a, b = F.normalize(torch.randn(4, 8), dim=-1), F.normalize(torch.randn(4, 8), dim=-1)
    scale, margin = 10.0, 0.2
    logits = scale * (a @ b.T - margin * torch.eye(4))
    expected = 0.5 * (F.cross_entropy(logits, torch.arange(4)) + F.cross_entropy(logits.T, torch.arange(4)))
    torch.testing.assert_close(translation_ranking_loss(a, b, scale, margin), expected)
    torch.testing.assert_close(ContrastiveLoss(scale, margin)(a, b), expected)  # no process group: local batch


def test_ranking_loss_prefers_aligned_pairs() -> None:
    torch.manual_seed(0)
    a = F.normalize(torch.randn(16, 32), dim=-1)
    loss = ContrastiveLoss(scale=20.0, margin=0.3)
    aligned, shuffled = loss(a, a), loss(a, a[torch.randperm(16)])
    assert aligned < 0.5 < shuffled
    assert loss(a, a) > ContrastiveLoss(scale=20.0, margin=0.0)(a, a)  # the margin makes positives work harder
    x = a.clone().requires_grad_(True)
    loss(x, a[torch.roll(torch.arange(16), 1)]).backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    with pytest.raises(ValueError, match="equal shapes"):
        loss(a, a[:3])


def test_language_queue_adds_past_rows_of_the_positives_language_by_hand() -> None:
    torch.manual_seed(0)
    a, b = F.normalize(torch.randn(4, 8), dim=-1), F.normalize(torch.randn(4, 8), dim=-1)
    ids = torch.arange(12).view(4, 3)
    keys = (text_keys(ids, torch.ones(4, 3)), text_keys(ids + 100, torch.ones(4, 3)))
    padded = F.pad(ids, (0, 61)), F.pad(torch.ones(4, 3), (0, 61))  # padding, as a longer batch adds, changes no key
    assert torch.equal(text_keys(*padded), keys[0]) and len(set(keys[0].tolist() + keys[1].tolist())) == 8
    langs = (["deu", "deu", "cmn", "cmn"], ["eng", "eng", "eng", "fra"])
    loss = ContrastiveLoss(10.0, 0.2, lang_queue=3).train()
    first = loss(a, b, langs, keys)  # the queue is empty: the plain loss
    torch.testing.assert_close(first, ContrastiveLoss(10.0, 0.2)(a, b))
    # Now queued: eng <- b[0..2] (newest first, at most 3), fra <- b[3], deu <- a[0..1], cmn <- a[2..3].
    assert loss.queue is not None and loss.queue.emb["eng"].shape == (3, 8) and loss.queue.emb["fra"].shape == (1, 8)
    c, d = F.normalize(torch.randn(4, 8), dim=-1), F.normalize(torch.randn(4, 8), dim=-1)
    new_keys = (text_keys(ids + 200, torch.ones(4, 3)), keys[1].clone())
    new_keys[1][1] = 7  # d[1] is a new English text; d[0], d[2] repeat queued texts, which must not be negatives
    logits = 10.0 * (c @ d.T - 0.2 * torch.eye(4))
    queued = torch.full((4, 3), float("-inf"))
    queued[0, 1:], queued[1, :], queued[2, :2] = c[0] @ b[1:3].T, c[1] @ b[:3].T, c[2] @ b[:2].T  # b rows: 0 1 2
    queued[3, 0] = c[3] @ b[3]  # fra: its only queued row is d[3]'s own text
    queued[3, 0] = float("-inf")
    back = torch.full((4, 3), float("-inf"))
    back[:2, :2], back[2:, :2] = d[:2] @ a[:2].T, d[2:] @ a[2:].T
    forward = F.cross_entropy(torch.cat([logits, 10.0 * queued], 1), torch.arange(4))
    backward = F.cross_entropy(torch.cat([logits.T, 10.0 * back], 1), torch.arange(4))
    torch.testing.assert_close(loss(c, d, langs, new_keys), 0.5 * (forward + backward))
    with pytest.raises(ValueError, match="languages and text keys"):
        loss(c, d)


def test_parallel_reader_names_the_file_and_line_of_a_bad_row(tmp_path: Path) -> None:
    from datamodules.text import read_parallel

    good = '{"id": "1", "texts": {"eng_Latn": "a cat", "deu_Latn": "eine Katze"}}'
    p = tmp_path / "train.jsonl"
    p.write_text(good + "\n\n" + '{"id": "2", "texts": {"eng_Latn": "a dog"\n', encoding="utf-8")
    with pytest.raises(ValueError, match=r"train\.jsonl:3: not a parallel row"):
        read_parallel(p)
    p.write_text(good + "\n" + '{"id": "2", "texts": ["a dog"]}\n', encoding="utf-8")
    with pytest.raises(ValueError, match=r"train\.jsonl:2: 'texts' must map"):
        read_parallel(p)
    p.write_text(good + "\n", encoding="utf-8")
    assert read_parallel(p) == [{"eng_Latn": "a cat", "deu_Latn": "eine Katze"}]
    with pytest.raises(FileNotFoundError, match=r"missing\.jsonl"):
        read_parallel(tmp_path / "missing.jsonl")
