"""SentencePiece subword tokenizer with byte fallback, so text in a script never seen in training is not UNK.

Kudo & Richardson (2018), "SentencePiece: A simple and language independent subword tokenizer". The model is
one ``tokenizer.model`` file inside the model directory; language tokens (``<deu_Latn>``) are optional.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence
from pathlib import Path

import sentencepiece as spm
import torch
from torch import Tensor

TOKENIZER_FILE = "tokenizer.model"
PAD_ID, UNK_ID, BOS_ID, EOS_ID = 0, 1, 2, 3


def lang_token(lang: str) -> str:
    """The user-defined piece that marks a language, e.g. ``<deu_Latn>``."""
    return f"<{lang}>"


class SentencePieceTokenizer:
    """Texts to padded id tensors: ``[lang token] pieces </s>``, cut to ``max_length``."""

    def __init__(self, model_file: str | Path):
        path = Path(model_file)
        if path.is_dir():
            path = path / TOKENIZER_FILE
        if not path.is_file():
            raise FileNotFoundError(f"SentencePiece model not found: {path}")
        self.path = path
        self.sp = spm.SentencePieceProcessor(model_file=str(path))
        if self.sp.pad_id() != PAD_ID or self.sp.eos_id() != EOS_ID:
            raise ValueError(f"{path}: expected pad id {PAD_ID} and eos id {EOS_ID}, got {self.sp.pad_id()}, "
                             f"{self.sp.eos_id()}")
        pieces = {i: self.sp.id_to_piece(i) for i in range(len(self))}
        self.lang_ids = {i for i, p in pieces.items() if _is_lang_piece(p)}
        self.langs = [pieces[i][1:-1] for i in sorted(self.lang_ids)]

    def __len__(self) -> int:
        return int(self.sp.get_piece_size())

    @property
    def pad_id(self) -> int:
        return PAD_ID

    @classmethod
    def train(
        cls,
        texts: Iterable[str],
        out_file: str | Path,
        vocab_size: int = 8000,
        model_type: str = "unigram",
        langs: Sequence[str] = (),
        character_coverage: float = 0.9995,
        max_sentences: int = 200_000,
    ) -> SentencePieceTokenizer:
        """Train on ``texts`` (one sentence each) and write the model to ``out_file``; ``langs`` adds lang tokens."""
        lines = [t for t in texts if t.strip()]
        if not lines:
            raise ValueError(f"no text to train the tokenizer {out_file} on")
        # Byte pieces, specials, language tokens and every character must fit below the requested size.
        floor = 256 + 4 + len(langs) + len({c for t in lines for c in t}) + 1
        buf = io.BytesIO()
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(lines),
            model_writer=buf,
            vocab_size=max(vocab_size, floor),
            model_type=model_type,
            byte_fallback=True,
            character_coverage=character_coverage,
            pad_id=PAD_ID, unk_id=UNK_ID, bos_id=BOS_ID, eos_id=EOS_ID,
            user_defined_symbols=[lang_token(lang) for lang in langs],
            hard_vocab_limit=False,  # a small corpus may not support the requested size; take what it has
            input_sentence_size=max_sentences,
            shuffle_input_sentence=True,
            num_threads=2,
            minloglevel=2,
        )
        from common.io import atomic_open

        with atomic_open(out_file, "wb") as f:
            f.write(buf.getvalue())
        return cls(out_file)

    def save(self, out_dir: str | Path) -> Path:
        """Copy the model file into ``out_dir`` as ``tokenizer.model``."""
        from common.io import atomic_open

        target = Path(out_dir) / TOKENIZER_FILE
        with atomic_open(target, "wb") as f:
            f.write(self.path.read_bytes())
        return target

    def encode(self, texts: Sequence[str], lang: str | None = None, max_length: int = 128) -> list[list[int]]:
        """Ids per text; a language token leads when ``lang`` is one of the tokenizer's languages."""
        prefix = [self.sp.piece_to_id(lang_token(lang))] if lang in self.langs else []
        ids: list[list[int]] = self.sp.encode(list(texts))
        return [[*(prefix + i)[:max_length - 1], EOS_ID] for i in ids]

    def decode(self, ids: Sequence[int]) -> str:
        skip = {PAD_ID, EOS_ID, BOS_ID} | self.lang_ids
        return str(self.sp.decode([i for i in ids if i not in skip]))

    def batch(self, texts: Sequence[str], lang: str | None = None, max_length: int = 128) -> tuple[Tensor, Tensor]:
        """Right-padded ``input_ids [B, T]`` and boolean ``mask [B, T]`` (True on real tokens)."""
        return pad_ids(self.encode(texts, lang, max_length))


def pad_ids(ids: Sequence[Sequence[int]]) -> tuple[Tensor, Tensor]:
    """Right-pad id lists with ``PAD_ID``: ``input_ids [B, T]`` and ``mask [B, T]``."""
    width = max((len(i) for i in ids), default=1)
    out = torch.full((len(ids), width), PAD_ID, dtype=torch.long)
    mask = torch.zeros((len(ids), width), dtype=torch.bool)
    for row, seq in enumerate(ids):
        out[row, : len(seq)] = torch.as_tensor(seq, dtype=torch.long)
        mask[row, : len(seq)] = True
    return out, mask


def _is_lang_piece(piece: str) -> bool:
    return piece.startswith("<") and piece.endswith(">") and "_" in piece and len(piece) > 4
