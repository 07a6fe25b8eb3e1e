"""A CTC token table with foreign ids (blank, UNK and specials anywhere), used by imported models, and the
reading of a transformers ``Wav2Vec2CTCTokenizer`` into one."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from common.io import atomic_open
from speech.encoders.wav2vec2_hf import read_json
from text.char_vocab import SPACE, CharVocab

log = logging.getLogger(__name__)

HF_SPECIALS = (("pad_token", "<pad>"), ("unk_token", "<unk>"), ("bos_token", "<s>"), ("eos_token", "</s>"))
"""The named special tokens of a ``Wav2Vec2CTCTokenizer`` and their defaults; the pad token is the CTC blank."""


class TokenVocab(CharVocab):
    """A ``CharVocab`` whose ids are those of an imported checkpoint, so its logits keep their meaning.

    ``tokens[i]`` is the text of id ``i`` (the word delimiter already mapped to a space); ids in
    ``specials`` (blank, UNK, <s>, </s> ...) produce no text.
    """

    TYPE = "ctc_tokens"

    def __init__(self, tokens: Sequence[str], blank_id: int, unk_id: int, specials: Iterable[int] = (),
                 word_delimiter: str = "|", lang_chars: dict[str, str] | None = None):
        if len(set(tokens)) != len(tokens):
            dup = sorted({t for t in tokens if tokens.count(t) > 1})
            raise ValueError(f"token table has duplicate entries: {dup}")
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


def _content(token: Any) -> str | None:
    """A token as tokenizer files write it: a string, or an ``AddedToken`` dict with its ``content``."""
    return token.get("content") if isinstance(token, dict) else token


def vocab_from_hf(model_dir: str | os.PathLike[str], head_size: int, target_lang: str | None = None) -> TokenVocab:
    """A directory's ``Wav2Vec2CTCTokenizer`` over the head's ``head_size`` ids: "|" a space, the pad token the blank.

    Reads the tokenizer files of old and new transformers alike: vocab.json (flat, or one table per language as
    in MMS), tokenizer_config.json (``added_tokens_decoder`` since 4.34) and the older special_tokens_map.json and
    added_tokens.json. An id decodes as the tokenizer decodes it: its vocabulary entry first, then its added token;
    a head id with neither decodes to the unk token, and so is silent here, as are the special tokens. Tokenizer ids
    the head does not reach (the ``<s>``/``</s>`` a tokenizer adds after vocab.json, say) are never emitted: they
    are left out, with a log line.
    """
    d = Path(model_dir)
    table = read_json(d / "vocab.json")
    if not table:
        raise FileNotFoundError(f"{d}: vocab.json is missing or empty (a Wav2Vec2ForCTC directory needs one)")
    cfg = read_json(d / "tokenizer_config.json")
    smap = read_json(d / "special_tokens_map.json")
    if all(isinstance(x, dict) for x in table.values()):  # MMS: one table per language
        lang = target_lang or cfg.get("target_lang")
        if lang not in table:
            raise ValueError(f"{d}/vocab.json has one table per language and {lang!r} is not one of them; pick one "
                             f"with target_lang= (e.g. {', '.join(sorted(table)[:5])})")
        table = table[lang]
    if not all(isinstance(i, int) for i in table.values()):
        raise ValueError(f"{d}/vocab.json: expected token -> id, found non-integer ids")
    named = {name: _content(cfg[name] if name in cfg else smap.get(name, default)) for name, default in HF_SPECIALS}
    extra: list[Any] = []
    for source in (cfg, smap):
        for key in ("additional_special_tokens", "extra_special_tokens"):
            more = source.get(key) or []
            extra += list(more.values()) if isinstance(more, dict) else list(more)
    special_names = {t for t in [*named.values(), *(_content(x) for x in extra)] if t}
    # Added tokens: the older added_tokens.json, then tokenizer_config.json's added_tokens_decoder.
    added: dict[int, tuple[str, bool]] = {int(i): (t, t in special_names)
                                          for t, i in read_json(d / "added_tokens.json").items()}
    for i, entry in (cfg.get("added_tokens_decoder") or {}).items():
        added[int(i)] = (entry["content"], bool(entry.get("special")))
    text_of = {i: t for i, (t, _) in added.items()} | {i: t for t, i in table.items()}  # vocab.json wins, as there
    special_ids = {i for i, t in text_of.items() if t in special_names}
    special_ids |= {i for i, (t, special) in added.items() if special and text_of[i] == t}
    beyond = {i: t for i, t in sorted(text_of.items()) if not 0 <= i < head_size}
    pad = named["pad_token"]
    if pad is None or pad not in text_of.values():
        raise ValueError(f"{d}: the pad token {pad!r} (the CTC blank) is not in the tokenizer's vocabulary")
    if pad not in (text_of.get(i) for i in range(head_size)):
        pad_id = min(i for i, t in beyond.items() if t == pad)
        raise ValueError(f"{d}: the pad token {pad!r} (the CTC blank) has id {pad_id}, beyond the {head_size} "
                         "outputs of the model's head")
    if beyond:
        log.info("%s: tokenizer ids beyond the head's %d outputs are never emitted, left out: %s", d, head_size,
                 ", ".join(f"{t} ({i})" for i, t in beyond.items()))
    delim = _content(cfg.get("word_delimiter_token", "|"))
    lower = bool(cfg.get("do_lower_case", False))  # the tokenizer lower-cases its decoded text
    tokens, silent = [], []
    for i in range(head_size):
        t = text_of.get(i)
        if t is None:
            t = f"<extra_{i}>"  # decodes to the unk token
        elif t == delim:
            t = SPACE
        elif lower and i not in special_ids:
            t = t.lower()
        if (i in special_ids and t != SPACE) or i not in text_of:
            silent.append(i)
        tokens.append(t)
    ids = {t: i for i, t in enumerate(tokens)}
    unk = named["unk_token"]
    try:
        return TokenVocab(tokens, ids[pad], ids.get(unk or "", ids[pad]), silent, delim or "|")
    except ValueError as e:
        raise ValueError(f"{d}: the tokenizer's vocabulary does not make a CTC token table: {e}") from e
