"""A CTC token table with foreign ids (blank, UNK and specials anywhere), used by imported models."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from common.io import atomic_open
from text.char_vocab import SPACE, CharVocab


class TokenVocab(CharVocab):
    """A ``CharVocab`` whose ids are those of an imported checkpoint, so its logits keep their meaning.

    ``tokens[i]`` is the text of id ``i`` (the word delimiter already mapped to a space); ids in
    ``specials`` (blank, UNK, <s>, </s> ...) produce no text.
    """

    TYPE = "ctc_tokens"

    def __init__(self, tokens: Sequence[str], blank_id: int, unk_id: int, specials: Iterable[int] = (),
                 word_delimiter: str = "|", lang_chars: dict[str, str] | None = None):
        if len(set(tokens)) != len(tokens):
            raise ValueError("token table has duplicate entries")
        if not (0 <= blank_id < len(tokens) and 0 <= unk_id < len(tokens)):
            raise ValueError(f"blank id {blank_id} / unk id {unk_id} outside a table of {len(tokens)} tokens")
        self.tokens = list(tokens)
        self.index = {t: i for i, t in enumerate(self.tokens)}
        self.lang_chars = dict(lang_chars or {})
        self._blank, self._unk = blank_id, unk_id
        self.specials = sorted({blank_id, unk_id, *specials})
        self._silent = set(self.specials)
        self.word_delimiter = word_delimiter

    @property
    def blank_id(self) -> int:
        return self._blank

    @property
    def unk_id(self) -> int:
        return self._unk

    @property
    def silent_ids(self) -> list[int]:
        return self.specials

    def allowed_ids(self, lang: str | None) -> list[int] | None:
        if not lang or lang not in self.lang_chars:
            return None
        space = [self.index[SPACE]] if SPACE in self.index else []
        return [self._blank, *space, *(self.index[c] for c in self.lang_chars[lang] if c in self.index)]

    def encode(self, text: str) -> list[int]:
        return [self.index.get(c, self._unk) for c in text]

    def decode(self, ids: Iterable[int]) -> str:
        """Ids to text; blank, UNK and the other specials produce nothing."""
        return "".join(self.tokens[i] for i in ids if i not in self._silent)

    def save(self, path: str | os.PathLike[str]) -> None:
        with atomic_open(path, "w", encoding="utf-8") as f:
            json.dump({"type": self.TYPE, "tokens": self.tokens, "blank_id": self._blank, "unk_id": self._unk,
                       "specials": self.specials, "word_delimiter": self.word_delimiter,
                       "lang_chars": self.lang_chars}, f, ensure_ascii=False, indent=0)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> TokenVocab:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        if data.get("type") != cls.TYPE:
            raise ValueError(f"{path}: not a token table (type {data.get('type')!r}, expected {cls.TYPE!r})")
        return cls(data["tokens"], int(data["blank_id"]), int(data["unk_id"]), data.get("specials", ()),
                   data.get("word_delimiter", "|"), data.get("lang_chars"))
