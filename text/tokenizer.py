"""SentencePiece subword tokenizer with byte fallback, so text in a script never seen in training is not UNK.

Kudo & Richardson (2018), "SentencePiece: A simple and language independent subword tokenizer". The model is
one ``tokenizer.model`` file inside the model directory; language tokens (``<deu_Latn>``) are optional.

A language added later (``extend``) gets a SentencePiece model of its own, trained on its text alone: its pieces
that the base vocabulary already has keep their ids, and the rest get new ids after every existing one. Text in
that language is cut with its own model; every other language is tokenized exactly as before.
``tokenizer_extensions.json`` beside ``tokenizer.model`` lists them: ``{lang: {"file": ..., "offset": ...}}``.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import sentencepiece as spm
import torch
from torch import Tensor

from common.io import atomic_open

TOKENIZER_FILE = "tokenizer.model"
EXTENSIONS_FILE = "tokenizer_extensions.json"
PAD_ID, UNK_ID, BOS_ID, EOS_ID = 0, 1, 2, 3
log = logging.getLogger(__name__)


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
        pieces = {i: self.sp.id_to_piece(i) for i in range(self.sp.get_piece_size())}
        self.lang_ids = {i for i, p in pieces.items() if _is_lang_piece(p)}
        self.langs = [pieces[i][1:-1] for i in sorted(self.lang_ids)]
        self.extensions: dict[str, LanguagePieces] = {}
        ext_file = path.parent / EXTENSIONS_FILE
        if ext_file.is_file():
            try:
                entries = {lang: (str(e["file"]), int(e["offset"]))
                           for lang, e in json.loads(ext_file.read_text(encoding="utf-8")).items()}
            except (ValueError, KeyError, TypeError, AttributeError) as e:
                raise ValueError(f"{ext_file}: not a tokenizer extension list ({type(e).__name__}: {e})") from e
            for lang, (name, offset) in entries.items():
                ext_path = path.parent / name
                if not ext_path.is_file():
                    raise FileNotFoundError(f"{ext_file}: {lang} names {ext_path}, which does not exist")
                self.extensions[lang] = LanguagePieces(ext_path, self.sp, offset)

    def __len__(self) -> int:
        """Number of ids, base pieces and every extension's new pieces."""
        return max([int(self.sp.get_piece_size()), *(e.end for e in self.extensions.values())])

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
        normalization: str = "nmt_nfkc",
    ) -> SentencePieceTokenizer:
        """Train on ``texts`` (one sentence each) and write the model to ``out_file``; ``langs`` adds lang tokens.
        ``normalization`` is SentencePiece's rule (``nmt_nfkc_cf`` also folds case)."""
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
            normalization_rule_name=normalization,
        )
        with atomic_open(out_file, "wb") as f:
            f.write(buf.getvalue())
        return cls(out_file)

    @classmethod
    def load_or_train(
        cls, path: str | Path, texts: Callable[[], Iterable[str]], vocab_size: int, what: str = "tokenizer",
        **train_kwargs: Any,
    ) -> SentencePieceTokenizer:
        """The model at ``path``, or one trained now on ``texts()`` and written there (``what`` names it in the log).
        ``texts`` is called only when training, so loading a saved model reads no corpus."""
        if Path(path).is_file():
            return cls(path)
        tokenizer = cls.train(texts(), path, vocab_size, **train_kwargs)
        log.info("trained a %d-piece %s: %s", len(tokenizer), what, path)
        return tokenizer

    def save(self, out_dir: str | Path) -> Path:
        """Copy the model file (and any language extensions) into ``out_dir`` as ``tokenizer.model``."""
        target = Path(out_dir) / TOKENIZER_FILE
        with atomic_open(target, "wb") as f:
            f.write(self.path.read_bytes())
        for lang, ext in self.extensions.items():
            with atomic_open(Path(out_dir) / _extension_file(lang), "wb") as f:
                f.write(ext.path.read_bytes())
        if self.extensions:
            _write_extensions(out_dir, {lang: ext.offset for lang, ext in self.extensions.items()})
        return target

    def extend(self, lang: str, texts: Iterable[str], out_dir: str | Path, vocab_size: int = 1000,
               model_type: str = "unigram", normalization: str = "nmt_nfkc",
               ) -> tuple[SentencePieceTokenizer, list[str]]:
        """A tokenizer in ``out_dir`` that cuts ``lang`` with pieces learnt from ``texts``; also returns its new
        pieces (ids ``len(self)`` on, in order). Other languages keep their exact ids."""
        if lang in self.extensions or lang in self.langs:
            raise ValueError(f"the tokenizer already has {lang}")
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        self.save(out)
        SentencePieceTokenizer.train(texts, out / _extension_file(lang), vocab_size, model_type,
                                     character_coverage=1.0, normalization=normalization)
        _write_extensions(out, {**{x: e.offset for x, e in self.extensions.items()}, lang: len(self)})
        extended = SentencePieceTokenizer(out / TOKENIZER_FILE)
        return extended, extended.extensions[lang].new_pieces

    def encode(self, texts: Sequence[str], lang: str | None = None, max_length: int = 128) -> list[list[int]]:
        """Ids per text; a language token leads when ``lang`` is one of the tokenizer's languages."""
        prefix = [self.sp.piece_to_id(lang_token(lang))] if lang in self.langs else []
        ext = self.extensions.get(lang) if lang else None
        ids: list[list[int]] = ext.encode(texts) if ext else self.sp.encode(list(texts))
        return [[*(prefix + i)[:max_length - 1], EOS_ID] for i in ids]

    def decode(self, ids: Sequence[int], lang: str | None = None) -> str:
        """Text of ``ids`` (specials and language tokens dropped); ``lang`` names an extension's ids."""
        skip = {PAD_ID, EOS_ID, BOS_ID} | self.lang_ids
        kept = [i for i in ids if i not in skip]
        ext = self.extensions.get(lang) if lang else None
        return str(ext.decode(kept) if ext else self.sp.decode(kept))

    def batch(self, texts: Sequence[str], lang: str | None = None, max_length: int = 128) -> tuple[Tensor, Tensor]:
        """Right-padded ``input_ids [B, T]`` and boolean ``mask [B, T]`` (True on real tokens)."""
        return pad_ids(self.encode(texts, lang, max_length))


class LanguagePieces:
    """One language's own SentencePiece model; its pieces missing from the base get ids ``offset`` on, in order."""

    def __init__(self, path: Path, base: spm.SentencePieceProcessor, offset: int):
        self.path, self.offset = path, offset
        self.sp = spm.SentencePieceProcessor(model_file=str(path))
        self.id_map: list[int] = []
        self.new_pieces: list[str] = []
        for i in range(self.sp.get_piece_size()):
            piece = self.sp.id_to_piece(i)
            known = base.piece_to_id(piece)
            if known != UNK_ID or piece == base.id_to_piece(UNK_ID):
                self.id_map.append(known)
            else:
                self.id_map.append(offset + len(self.new_pieces))
                self.new_pieces.append(piece)

    @property
    def end(self) -> int:
        """One past the last new id."""
        return self.offset + len(self.new_pieces)

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        return [[self.id_map[i] for i in ids] for ids in self.sp.encode(list(texts))]

    def decode(self, ids: Sequence[int]) -> str:
        own = {suite_id: i for i, suite_id in enumerate(self.id_map)}
        return str(self.sp.decode([own[i] for i in ids if i in own]))


def _extension_file(lang: str) -> str:
    return f"tokenizer.{lang}.model"


def _write_extensions(out_dir: str | Path, offsets: dict[str, int]) -> None:
    """``tokenizer_extensions.json``: each extended language's model file and first new id."""
    with atomic_open(Path(out_dir) / EXTENSIONS_FILE, "w", encoding="utf-8") as f:
        json.dump({lang: {"file": _extension_file(lang), "offset": off} for lang, off in offsets.items()}, f,
                  indent=2)


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
