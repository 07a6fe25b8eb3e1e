"""The units a TTS model can say, as ids: ``UnitVocab`` (pad 0, unk 1, then the units of the training data).

Public API::

    vocab = UnitVocab.build([(text, lang), ...])   # units from transcripts (speech.tts.units.char_units)
    vocab = UnitVocab(["a", "b", " "])             # or from a unit inventory (a datamodule's ``units``)
    ids = vocab.encode(units)                      # unknown units -> unk id 1
    ids = vocab.encode(units, strict=True)         # ValueError naming the units the model cannot say
    vocab.encode_text("Hallo Welt", "deu_Latn")    # char_units, then encode (strict by default)
    vocab.save(path); UnitVocab.load(path)         # JSON {"type": "tts_units", "units": [...]}
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from common.io import atomic_open
from speech.tts.units import char_units

PAD, UNK = "<pad>", "<unk>"
TYPE = "tts_units"
"""The ``type`` field of a saved unit vocabulary."""


class UnitVocab:
    """Maps TTS units (characters, or later phonemes) to ids; id 0 pads, id 1 stands for any unseen unit."""

    pad_id = 0
    unk_id = 1

    def __init__(self, units: Sequence[str]):
        extra = list(dict.fromkeys(u for u in units if u not in (PAD, UNK)))
        self.tokens: list[str] = [PAD, UNK, *extra]
        self.index = {t: i for i, t in enumerate(self.tokens)}

    @classmethod
    def build(cls, texts: Iterable[tuple[str, str | None]]) -> UnitVocab:
        """Units of ``(text, lang)`` pairs, sorted so the ids don't depend on the order of the rows."""
        units: set[str] = set()
        for text, lang in texts:
            units.update(char_units(text, lang))
        return cls(sorted(units))

    @property
    def units(self) -> list[str]:
        """The real units, without pad and unk."""
        return self.tokens[2:]

    def __len__(self) -> int:
        return len(self.tokens)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, UnitVocab) and self.tokens == other.tokens

    def unknown(self, units: Iterable[str]) -> list[str]:
        """The units this vocabulary does not know, each once, in order of appearance."""
        return [u for u in dict.fromkeys(units) if u not in self.index or u in (PAD, UNK)]

    def encode(self, units: Sequence[str], strict: bool = False) -> list[int]:
        """Ids of ``units``; unknown ones become unk, or with ``strict`` a ``ValueError`` naming them."""
        if strict:
            missing = self.unknown(units)
            if missing:
                raise ValueError(f"the model cannot say {''.join(missing)!r} ({', '.join(map(repr, missing))}): "
                                 f"not among its {len(self.units)} units")
        return [self.index.get(u, self.unk_id) if u not in (PAD, UNK) else self.unk_id for u in units]

    def encode_text(self, text: str, lang: str | None = None, strict: bool = True) -> list[int]:
        """``char_units(text, lang)`` as ids (``ValueError`` for empty text or, with ``strict``, unknown units)."""
        return self.encode(char_units(text, lang), strict=strict)

    def decode(self, ids: Iterable[int]) -> list[str]:
        """Ids back to units (pad dropped)."""
        return [self.tokens[i] for i in ids if i != self.pad_id]

    def save(self, path: str | os.PathLike[str]) -> None:
        with atomic_open(path, "w", encoding="utf-8") as f:
            json.dump({"type": TYPE, "units": self.units}, f, ensure_ascii=False, indent=0)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> UnitVocab:
        """Read a vocabulary written by ``save``; anything else is a ``ValueError`` naming the file."""
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise ValueError(f"{path}: unreadable unit vocabulary ({e})") from None
        units = data.get("units") if isinstance(data, dict) else None
        if not isinstance(data, dict) or data.get("type") != TYPE or not isinstance(units, list) \
                or not all(isinstance(u, str) for u in units):
            raise ValueError(f"{path}: not a TTS unit vocabulary (expected {{'type': {TYPE!r}, 'units': [...]}})")
        return cls(units)
