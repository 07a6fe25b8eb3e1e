"""Character vocabulary for CTC: every script in the data, and an UNK that never crashes."""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

from common.io import atomic_open

BLANK, UNK, SPACE = "<blank>", "<unk>", " "


class CharVocab:
    """Maps characters to ids; id 0 is the CTC blank, id 1 stands for any unseen character.

    ``lang_chars`` records the alphabet each language used in training, so decoding with a
    known language can keep to it (see ``allowed_ids``).
    """

    def __init__(self, chars: Sequence[str], lang_chars: dict[str, str] | None = None):
        extra = [c for c in chars if c not in (BLANK, UNK, SPACE)]
        self.tokens: list[str] = [BLANK, UNK, SPACE, *extra]
        self.index = {t: i for i, t in enumerate(self.tokens)}
        self.lang_chars: dict[str, str] = dict(lang_chars or {})

    @classmethod
    def build(cls, texts: Iterable[str], min_count: int = 1, langs: Iterable[str] | None = None,
              lang_min_share: float = 1e-4) -> CharVocab:
        """Collect the characters of already normalised ``texts``, most frequent first.

        With ``langs`` (one per text), also record each language's alphabet: the characters
        making up at least ``lang_min_share`` of its text (stray foreign letters stay out).
        """
        texts = list(texts)
        counts = Counter(c for t in texts for c in t)
        chars = [c for c, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])) if n >= min_count]
        lang_chars: dict[str, str] = {}
        if langs is not None:
            per_lang: dict[str, Counter[str]] = {}
            for t, lang in zip(texts, langs, strict=True):
                per_lang.setdefault(lang, Counter()).update(t)
            for lang, c in per_lang.items():
                total = sum(c.values())
                lang_chars[lang] = "".join(sorted(ch for ch, n in c.items() if n >= lang_min_share * total
                                                  and ch != SPACE and ch in chars))
        return cls(chars, lang_chars)

    def allowed_ids(self, lang: str | None) -> list[int] | None:
        """Ids a transcript in ``lang`` may use (blank, space and its alphabet); None when unknown."""
        if not lang or lang not in self.lang_chars:
            return None
        return [0, 2, *(self.index[c] for c in self.lang_chars[lang] if c in self.index)]

    def __len__(self) -> int:
        return len(self.tokens)

    @property
    def blank_id(self) -> int:
        return 0

    @property
    def unk_id(self) -> int:
        return 1

    @property
    def silent_ids(self) -> list[int]:
        """Ids that write no text (blank and UNK here; imported token tables add their specials)."""
        return [0, 1]

    def encode(self, text: str) -> list[int]:
        return [self.index.get(c, 1) for c in text]

    def decode(self, ids: Iterable[int]) -> str:
        """Ids to text; blank and UNK produce nothing."""
        return "".join(self.tokens[i] for i in ids if i > 1)

    def extend(self, chars: Iterable[str]) -> list[str]:
        """Add unseen characters at the end (ids of existing ones never move); returns the new ones."""
        new = [c for c in dict.fromkeys(chars) if c not in self.index]
        for c in new:
            self.index[c] = len(self.tokens)
            self.tokens.append(c)
        return new

    def save(self, path: str | os.PathLike[str]) -> None:
        with atomic_open(path, "w", encoding="utf-8") as f:
            json.dump({"type": "char", "tokens": self.tokens, "lang_chars": self.lang_chars}, f,
                      ensure_ascii=False, indent=0)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> CharVocab:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        tokens = data["tokens"]
        if tokens[:3] != [BLANK, UNK, SPACE]:
            raise ValueError(f"{path}: not a character vocabulary written by this suite")
        return cls(tokens[3:], data.get("lang_chars"))
