"""benchmarks/text_ood_errors.py: piece statistics and X->English errors split by length, on a tiny random encoder."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from benchmarks.text_ood_errors import main, piece_stats
from text.sentence_encoder import SentenceEncoder, save_pretrained, sentence_encoder_bag
from text.tokenizer import SentencePieceTokenizer

WORDS = ["show", "the", "balance", "select", "an", "image", "file", "open", "save", "close", "print", "account",
         "amount", "report", "budget"]


def test_piece_stats_count_byte_fallbacks(tmp_path: Path) -> None:
    tok = SentencePieceTokenizer.train([" ".join(WORDS)] * 50, tmp_path / "t.model", vocab_size=60)
    plain = piece_stats(tok, ["show the balance"], "eng_Latn")
    assert plain["byte_pieces_pct"] == 0 and plain["pieces_per_sentence"] >= 3
    assert piece_stats(tok, ["余额"], "cmn_Hans")["byte_pieces_pct"] > 0  # no piece for these signs: 6 bytes


def test_copies_are_found_and_shuffled_sentences_are_not(tmp_path: Path) -> None:
    sentences = [" ".join(WORDS[i:i + 2 + i % 5]) for i in range(12)]
    sentences += [" ".join(WORDS[::-1][i:i + 6]) for i in range(8)]
    tok = SentencePieceTokenizer.train(sentences * 20, tmp_path / "t.model", vocab_size=60)
    torch.manual_seed(0)
    net = SentenceEncoder(sentence_encoder_bag(vocab_size=len(tok), bag_buckets=4096, embed_dim=32)).eval()
    net.set_pieces([tok.sp.id_to_piece(i) for i in range(len(tok))])
    model = save_pretrained(net, tok, tmp_path / "model")
    rotated = sentences[1:] + sentences[:1]  # "German" is the next row's English: every retrieval should miss
    data = tmp_path / "test.jsonl"
    data.write_text("".join(json.dumps({"id": str(i), "texts": {"eng_Latn": e, "fra_Latn": e, "deu_Latn": d}}) + "\n"
                            for i, (e, d) in enumerate(zip(sentences, rotated))), encoding="utf-8")
    report = main([f"model={model}", f"data={data}", "langs=[fra_Latn,deu_Latn]", f"out={tmp_path / 'r.json'}"])
    assert report["fra_Latn"]["to_eng_error"] == 0
    assert report["deu_Latn"]["to_eng_error"] > 50 and len(report["deu_Latn"]["examples"]) == 3
    short = report["fra_Latn"]["short_rows"]
    assert short == sum(len(s.split()) <= 5 for s in sentences)
    assert json.loads((tmp_path / "r.json").read_text())["rows"] == len(sentences)
