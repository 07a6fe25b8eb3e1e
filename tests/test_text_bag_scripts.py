"""text.ngram_bag's script-aware features: ideographic pieces get each sign (and sign pairs) as rows of their own."""

from __future__ import annotations

from pathlib import Path

import torch

from text.ngram_bag import is_ideographic, piece_features
from text.sentence_encoder import SentenceEncoder, from_pretrained, save_pretrained, sentence_encoder_bag
from text.tokenizer import SentencePieceTokenizer

BUCKETS = 1 << 20


def test_only_ideographs_count_as_ideographic() -> None:
    assert all(is_ideographic(c) for c in "余额文件가ひ")
    assert not any(is_ideographic(c) for c in "aé?ж्ड▁。3")


def test_a_chinese_piece_gets_its_signs_and_sign_pairs_first() -> None:
    plain = piece_features("▁余额", (3, 4, 5), BUCKETS, 24)
    rows = piece_features("▁余额", (3, 4, 5), BUCKETS, 24, cjk_orders=(1, 2))
    assert rows[0] == plain[0]  # the piece itself stays first
    signs = [piece_features(c, (), BUCKETS, 24, cjk_orders=(1,))[1] for c in "余额"]
    assert rows[1:3] == signs  # each sign alone, without the word-start mark
    # Two pieces sharing a sign share its row: 余额 ("balance") and 金额 ("amount") meet on 额.
    assert set(rows) & set(piece_features("金额", (3, 4, 5), BUCKETS, 24, cjk_orders=(1, 2)))
    assert not set(plain[1:]) & set(piece_features("金额", (3, 4, 5), BUCKETS, 24)[1:])
    assert len(rows) == len(plain) + 2 + 4  # + 2 signs + the 4 2-grams of "<▁余额>"
    assert rows[-(len(plain) - 1):] == plain[1:]  # then the usual 3-5-grams


def test_other_scripts_keep_their_features() -> None:
    for piece in ("▁Konto", "▁счёт", "▁खाता", "▁حساب"):
        assert piece_features(piece, (3, 4, 5), BUCKETS, 24, (1, 2)) == piece_features(piece, (3, 4, 5), BUCKETS, 24)


def test_the_setting_survives_save_and_load(tmp_path: Path) -> None:
    texts = ["选择一个图片文件", "显示余额", "账户金额", "select an image file", "show the balance"] * 20
    tok = SentencePieceTokenizer.train(texts, tmp_path / "tok.model", vocab_size=120, character_coverage=1.0)
    net = SentenceEncoder(sentence_encoder_bag(vocab_size=len(tok), bag_buckets=4096, embed_dim=16,
                                               bag_cjk_orders=(1, 2))).eval()
    net.set_pieces([tok.sp.id_to_piece(i) for i in range(len(tok))])
    loaded, _ = from_pretrained(save_pretrained(net, tok, tmp_path / "model"))
    assert loaded.cfg.bag_cjk_orders == (1, 2)
    ids, mask = tok.batch(["显示余额"], "cmn_Hans")
    assert torch.equal(net(ids, mask), loaded(ids, mask))


def test_tokenizer_coverage_decides_whether_rare_signs_fall_back_to_bytes(tmp_path: Path) -> None:
    from datamodules.text import ParallelTextDataModule

    common, rare = "选择一个图片文件显示余额", "龘靐齉爩"
    mono = tmp_path / "mono"
    mono.mkdir()
    (mono / "cmn_Hans.txt").write_text("\n".join([common] * 400 + [rare]) + "\n", encoding="utf-8")
    (mono / "eng_Latn.txt").write_text("select an image file\nshow the balance\n" * 200, encoding="utf-8")
    manifest = tmp_path / "train.jsonl"
    manifest.write_text('{"id": "0", "texts": {"eng_Latn": "show the balance", "cmn_Hans": "显示余额"}}\n')

    def byte_pieces(coverage: float) -> int:
        dm = ParallelTextDataModule(str(manifest), mono_dir=str(mono), vocab_size=300, tokenizer_coverage=coverage,
                                    tokenizer_path=str(tmp_path / f"tok{coverage}.model"), held_out=[])
        ids = dm.tokenizer.encode([rare], "cmn_Hans")[0]
        return sum(dm.tokenizer.sp.id_to_piece(i).startswith("<0x") for i in ids)

    assert byte_pieces(0.99) > 0
    assert byte_pieces(1.0) == 0


def test_tokenizer_normalization_can_fold_case(tmp_path: Path) -> None:
    from datamodules.text import ParallelTextDataModule

    mono = tmp_path / "mono"
    mono.mkdir()
    (mono / "eng_Latn.txt").write_text("Show the Balance\nshow the balance\nSelect a file\n" * 100, encoding="utf-8")
    manifest = tmp_path / "train.jsonl"
    manifest.write_text('{"id": "0", "texts": {"eng_Latn": "show the balance", "deu_Latn": "Saldo anzeigen"}}\n')

    def ids(rule: str) -> tuple[list[int], list[int]]:
        dm = ParallelTextDataModule(str(manifest), mono_dir=str(mono), vocab_size=60, tokenizer_normalization=rule,
                                    tokenizer_path=str(tmp_path / f"{rule}.model"), held_out=[])
        return dm.tokenizer.encode(["Show the Balance"])[0], dm.tokenizer.encode(["show the balance"])[0]

    upper, lower = ids("nmt_nfkc_cf")
    assert upper == lower
    upper, lower = ids("nmt_nfkc")
    assert upper != lower
