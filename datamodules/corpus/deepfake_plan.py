"""Every clip of the deepfake corpus, fixed by the seed: source, voice, language, channel, text, length and role.

A clip's role says which test isolates it: ``main`` clips (seen language, voice, channel and source) divide into
train, dev and test; ``unseen_speaker``, ``unseen_channel``, ``lolo`` and ``unseen_generator`` clips differ from
training in exactly that one factor and are test-only. Text is split by a hash of the sentence, so no sentence of a
dev or test clip is ever spoken in a training clip, whatever its source.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from datamodules.corpus.deepfake_config import DeepfakeCorpusConfig
from datamodules.corpus.deepfake_sources import SOURCES, Prosody, resynthesis_inputs, text_voices
from datamodules.corpus.grammar.realise import REALISERS, realise
from datamodules.corpus.grammar.sampler import MeaningSampler
from datamodules.corpus.text_sources import sentence_list, user_sentences
from speech.channels import CHANNELS
from text.normalize import normalize_transcript

log = logging.getLogger(__name__)

CHARS_PER_SECOND = 15
"""Characters of text a clip starts with per second of its drawn length (most engines speak 12-16)."""


@dataclass
class Clip:
    """One clip to render."""

    id: str
    source: str
    lang: str
    speaker: str
    """The voice heard: ``espeak:m3``; resynthesis and TTS clips name the voice they re-make or imitate."""
    channel: str
    role: str
    """``main``, ``unseen_speaker``, ``unseen_channel``, ``lolo`` or ``unseen_generator``."""
    split: str
    """``train``, ``dev`` or ``test`` (only main clips are ever train or dev)."""
    text: str
    spare: list[str]
    """Sentences appended, in order, while the speech is shorter than ``seconds``."""
    seconds: float
    """Drawn length; the speech is cut at a quiet point to at most this."""
    lead: float
    tail: float
    seed: int
    prosody: Prosody = field(default_factory=Prosody)
    semitones: float = 0.0
    formant_warp: float = 1.0
    raw: str = ""
    """Pre-rendered input audio (bona fide speech, suite TTS output); empty for generators run per clip."""

    @property
    def family(self) -> str:
        return "bonafide" if self.source == "bonafide" else SOURCES[self.source].family

    @property
    def audio(self) -> str:
        return f"clips/{self.source}/{self.lang}/{self.id}.wav"


def text_split(text: str, lang: str, shares: dict[str, float]) -> str:
    """The split a sentence belongs to, from a hash of its normalised form (stable across runs and sources)."""
    h = int(hashlib.md5(normalize_transcript(text, lang).encode("utf-8")).hexdigest()[:8], 16) / 0xFFFFFFFF
    total, acc = sum(shares.values()), 0.0
    for name, share in shares.items():
        acc += share / total
        if h <= acc:
            return name
    return list(shares)[-1]


def text_pools(cfg: DeepfakeCorpusConfig, lang: str, need: int) -> dict[str, list[str]]:
    """Sentences of ``lang`` per split: the sentence list, grammar realisations and the user's text file."""
    found = list(sentence_list(lang))
    if lang in REALISERS:
        sampler = MeaningSampler(f"{cfg.seed}:deepfake")
        found += [realise(sampler.sample(), lang) for _ in range(max(400, 2 * need))]
    if lang in cfg.text_files:
        found += list(user_sentences(cfg.text_files[lang]))
    pools: dict[str, list[str]] = {s: [] for s in cfg.split_shares}
    for s in dict.fromkeys(t.strip() for t in found if t.strip()):
        pools[text_split(s, lang, cfg.split_shares)].append(s)
    empty = [s for s, p in pools.items() if not p]
    if empty:
        raise ValueError(f"{lang}: no text for the {'/'.join(empty)} split: the suite has no sentence list or "
                         f"grammar for it; give a file of sentences with corpus.text_files.{lang}=<path>")
    return pools


def voices(source: str, lang: str) -> list[str]:
    """The voices a source speaks ``lang`` with (TTS clips imitate espeak-ng voices given as prompts)."""
    engine = SOURCES[source].engine
    if engine in ("world", "griffinlim"):
        return resynthesis_inputs(lang)
    if engine == "suite_tts":
        return text_voices("espeak_ng", lang)
    return text_voices(source, lang)


def _role(cfg: DeepfakeCorpusConfig, source: str, lang: str, held_voices: list[str], rng: random.Random) -> str:
    if lang in cfg.heldout_langs:
        return "lolo"
    if source in cfg.heldout_sources:
        return "unseen_generator"
    r = rng.random()
    if r < cfg.unseen_speaker_share:  # a source with no held-out voice keeps these clips in the main pool
        return "unseen_speaker" if held_voices else "main"
    if cfg.heldout_channels and r < cfg.unseen_speaker_share + cfg.unseen_channel_share:
        return "unseen_channel"
    return "main"


def _texts(pool: list[str], seconds: float, rng: random.Random) -> tuple[str, list[str]]:
    picked: list[str] = []
    while sum(len(s) + 1 for s in picked) < seconds * CHARS_PER_SECOND:
        picked.append(rng.choice(pool))
    return " ".join(picked), [rng.choice(pool) for _ in range(4)]


def clips_per_lang(cfg: DeepfakeCorpusConfig, source: str, n_langs: int) -> int:
    """How many clips a source gets in each of its ``n_langs`` languages."""
    n = cfg.clips_per_source_per_lang or -(-cfg.clips_per_source // max(1, n_langs))
    return min(n, cfg.tts_clips_per_lang) if source in SOURCES and SOURCES[source].engine == "suite_tts" else n


def plan_source(cfg: DeepfakeCorpusConfig, source: str, lang: str, pools: dict[str, list[str]], n: int,
                bonafide: list[dict[str, Any]] | None = None) -> list[Clip]:
    """``n`` clips of one source in one language (``bonafide`` gives the real rows to use for source bonafide)."""
    rng = random.Random(f"{cfg.seed}:{source}:{lang}")
    seen_ch = {c: w for c, w in cfg.channels.items() if c not in cfg.heldout_channels and w > 0}
    unknown = [c for c in [*cfg.channels, *cfg.heldout_channels] if c not in CHANNELS]
    if unknown or not seen_ch:
        raise ValueError(f"channels must be known ({', '.join(CHANNELS)}) and some not held out; got {unknown}")
    rows = bonafide or []
    all_voices = sorted({r["speaker"] for r in rows}) if source == "bonafide" else voices(source, lang)
    held = [v for v in all_voices if v in cfg.heldout_speakers]
    seen = [v for v in all_voices if v not in cfg.heldout_speakers]
    n = len(rows) if source == "bonafide" else n
    clips: list[Clip] = []
    for i in range(n):
        role = _role(cfg, source, lang, held, rng)
        speaker = rows[i]["speaker"] if rows else ""
        if rows and role in ("main", "unseen_speaker"):  # a real row's voice is given: it decides the role
            role = "unseen_speaker" if speaker in held else "main"
        elif not rows:
            role = "unseen_speaker" if role == "main" and not seen else role
            speaker = rng.choice(held if role == "unseen_speaker" else (seen or held))
        split = rng.choices(list(cfg.split_shares), weights=list(cfg.split_shares.values()))[0]
        split = split if role == "main" else "test"
        channel = (rng.choice(cfg.heldout_channels) if role == "unseen_channel"
                   else rng.choices(list(seen_ch), weights=list(seen_ch.values()))[0])
        seconds = rng.uniform(*cfg.duration)
        spare: list[str] = []
        if rows:
            text, raw = rows[i].get("text", ""), rows[i]["audio"]
        else:
            (text, spare), raw = _texts(pools[split], seconds, rng), ""
        prosody = Prosody(rng.randint(140, 190), rng.randint(30, 70), rng.randint(30, 80))
        warp = rng.uniform(*cfg.world_formant_warp) if rng.random() < 0.5 else 1.0
        clips.append(Clip(
            f"{lang}-{source}-{i:04d}", source, lang, speaker, channel, role, split, text, spare, seconds,
            rng.uniform(*cfg.pause), rng.uniform(*cfg.pause), rng.randrange(2**31), prosody,
            rng.uniform(*cfg.world_semitones), warp, raw))
    return clips


def read_bonafide(cfg: DeepfakeCorpusConfig) -> dict[str, list[dict[str, Any]]]:
    """Real-speech rows per language from ``bonafide_manifests`` (audio paths made absolute)."""
    out: dict[str, list[dict[str, Any]]] = {}
    for manifest in cfg.bonafide_manifests:
        path = Path(manifest)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: bona fide manifest not found")
        for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                audio, lang = row["audio"], row["lang"]
            except (json.JSONDecodeError, KeyError, TypeError) as e:
                raise ValueError(f"{path}:{lineno}: a bona fide row needs JSON with audio and lang ({e})") from None
            spk = f"bonafide:{row.get('speaker') or path.stem}"
            out.setdefault(lang, []).append({"audio": str((path.parent / audio).resolve()), "lang": lang,
                                             "speaker": spk, "text": row.get("text", "")})
    for lang, rows in out.items():
        random.Random(f"{cfg.seed}:bonafide:{lang}").shuffle(rows)
        out[lang] = rows[: cfg.bonafide_per_lang or clips_per_lang(cfg, "bonafide", len(out))]
    return out
