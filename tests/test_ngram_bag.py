"""text.ngram_bag and common.optim.LazyAdamW: the sentence encoder's hashed n-gram branch and its sparse updates."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from common.optim import LazyAdamW
from tests.text_data import LEXICON
from text.ngram_bag import piece_features
from text.sentence_encoder import SentenceEncoder, from_pretrained, save_pretrained, sentence_encoder_bag
from text.tokenizer import SentencePieceTokenizer

WORDS = [w for words in LEXICON.values() for w in words]


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory: pytest.TempPathFactory) -> SentencePieceTokenizer:
    texts = [" ".join(words[i : i + 4]) for words in LEXICON.values() for i in range(0, 12)] * 3
    return SentencePieceTokenizer.train(texts, tmp_path_factory.mktemp("tok") / "tokenizer.model", vocab_size=300)


def pieces_of(tok: SentencePieceTokenizer) -> list[str]:
    return [tok.sp.id_to_piece(i) for i in range(tok.sp.get_piece_size())]


def bag_encoder(tok: SentencePieceTokenizer, **kw: object) -> SentenceEncoder:
    torch.manual_seed(0)
    net = SentenceEncoder(sentence_encoder_bag(vocab_size=len(tok), bag_buckets=4096, d_model=32, num_heads=2,
                                               ffn_dim=64, embed_dim=32, dropout=0.0, **kw))
    net.set_pieces(pieces_of(tok))
    return net


def test_piece_features_are_the_piece_then_its_ngrams() -> None:
    rows = piece_features("▁Konto", (3,), 1 << 20, 24)
    assert len(rows) == 1 + len("<▁konto>") - 2  # the piece, then its 3-grams (lower case, ends marked)
    assert rows == piece_features("▁Konto", (3,), 1 << 20, 24)  # a fixed hash: the same rows in every process
    assert piece_features("▁Konto", (3,), 1 << 20, 24)[1:] == piece_features("▁konto", (3,), 1 << 20, 24)[1:]
    assert len(piece_features("▁accounting", (3, 4, 5), 1 << 20, 8)) == 8


def test_a_sentence_embeds_the_same_alone_and_in_a_padded_batch(tokenizer: SentencePieceTokenizer) -> None:
    net = bag_encoder(tokenizer).eval()
    texts = ["cat dog house", "Katze", "кіт пес дім річка зелений малий"]
    ids, mask = tokenizer.batch(texts)
    together = net(ids, mask)
    for i, text in enumerate(texts):
        alone = net(*tokenizer.batch([text]))
        assert torch.allclose(together[i], alone[0], atol=1e-5)


def test_only_the_rows_a_batch_touches_get_gradients_and_move(tokenizer: SentencePieceTokenizer) -> None:
    net = bag_encoder(tokenizer, num_layers=0)
    assert net.bag is not None
    ids, mask = tokenizer.batch(["cat dog house", "Katze"])
    before = net.bag.rows.weight.detach().clone()
    opt = LazyAdamW(net.parameters(), lr=1e-2)
    net(ids, mask).sum().backward()
    grad = net.bag.rows.weight.grad
    assert grad is not None and grad.is_sparse
    touched = grad.coalesce().indices()[0]
    expected = {int(r) for r in net.bag.table[ids[mask.bool()]].flatten() if r >= 0}
    assert expected <= set(touched.tolist())
    opt.step()
    moved = (net.bag.rows.weight.detach() != before).any(1)
    assert moved[touched].all() and int(moved.sum()) == len(touched)


def test_lazy_adamw_is_adamw_on_dense_parameters() -> None:
    torch.manual_seed(0)
    a = torch.nn.Parameter(torch.randn(5, 3))
    b = torch.nn.Parameter(a.detach().clone())
    ours, ref = LazyAdamW([a], lr=1e-2, weight_decay=0.1), torch.optim.AdamW([b], lr=1e-2, weight_decay=0.1)
    for step in range(5):
        target = torch.randn(5, 3, generator=torch.Generator().manual_seed(step))
        for p, opt in ((a, ours), (b, ref)):
            opt.zero_grad()
            (p - target).pow(2).sum().backward()
            opt.step()
    assert torch.allclose(a, b, atol=1e-6)


def test_the_bag_learns_translations_of_unseen_sentences(tokenizer: SentencePieceTokenizer) -> None:
    """Pairs of a "language" and its respelling: held-out word combinations get retrieved after training."""
    rng = random.Random(0)
    vocab = sorted(set(WORDS))[:40]

    def respell(sentence: str) -> str:
        return " ".join(w[::-1] + "a" for w in sentence.split())

    sentences = sorted({" ".join(rng.sample(vocab, 4)) for _ in range(600)})  # sorted: sets follow the hash seed
    rng.shuffle(sentences)
    train, held = sentences[:500], sentences[500:564]
    torch.manual_seed(0)  # the initial bag, whatever ran before
    tok = SentencePieceTokenizer.train(train + [respell(s) for s in train], tokenizer.path.parent / "rev.model",
                                       vocab_size=300)
    net = bag_encoder(tok, num_layers=0)

    def error() -> float:
        net.eval()
        with torch.no_grad():
            a, b = net(*tok.batch(held)), net(*tok.batch([respell(s) for s in held]))
        net.train()
        return ((a @ b.T).argmax(1) != torch.arange(len(held))).float().mean().item()

    before = error()
    opt = LazyAdamW(net.parameters(), lr=1e-2)
    for _ in range(30):
        batch = rng.sample(train, 32)
        a, b = net(*tok.batch(batch)), net(*tok.batch([respell(s) for s in batch]))
        loss = F.cross_entropy(20 * a @ b.T, torch.arange(len(batch)))
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = error()
    assert before > 0.5 and after < before / 3, (before, after)


def test_save_load_and_vocabulary_growth_keep_the_bag(tokenizer: SentencePieceTokenizer, tmp_path: Path) -> None:
    net = bag_encoder(tokenizer).eval()
    ids, mask = tokenizer.batch(["cat dog house", "Katze"])
    loaded, _ = from_pretrained(save_pretrained(net, tokenizer, tmp_path / "model"))
    assert torch.equal(net(ids, mask), loaded(ids, mask))
    assert loaded.bag is not None and torch.equal(loaded.bag.table, net.bag.table)  # type: ignore[union-attr]
    old = net.cfg.vocab_size
    net.grow_vocab(torch.zeros(2, 32), ["▁neu", "wort"])
    assert net.bag is not None and net.bag.table.shape[0] == old + 2
    assert net.bag.table[old, 0] == piece_features("▁neu", net.cfg.bag_orders, 4096, 24)[0]
    assert torch.equal(net(ids, mask), loaded(ids, mask))  # old ids unchanged
