"""Generated multilingual speech corpus: espeak-ng (and flite/festival for English) renders open-vocabulary text.

Writes ``<out>/<split>/<lang>/*.wav`` (16 kHz mono) and ``<out>/<split>.jsonl`` manifests with ``audio``, ``text``,
``lang``, ``speaker``, ``voice_quality``, ``voice``, ``duration`` and ``source`` for the splits train, dev, test and
test_ood. test_ood is out of domain twice over: its text comes from a source training never samples (text_real's
held-out packages, else hand-written sentences kept out of training) and most of its speakers have voice qualities
(``heldout_qualities``) that train and dev never use. With ``heldout_speakers_per_lang`` (corpus=speech_tts), dev and
test are spoken by voices training never hears. Sentences never repeat across splits. Deterministic for a seed;
a re-run keeps finished files and renders the rest.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import shutil
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
from tqdm import tqdm

from common.commands import CORPUS_BUILDERS
from common.io import atomic_open, write_jsonl
from datamodules.corpus.languages import spec
from datamodules.corpus.text_sources import GENERATORS, real_sentences, sentence_list, usable, user_sentences
from datamodules.corpus.voices import (
    QUALITIES,
    SPEAKER_RATE,
    VARIED_PITCH,
    VARIED_VOICING,
    Speaker,
    available,
    festival_installed,
    festival_voices,
    make_speaker,
    recorded_speaker,
    speaker_fields,
    synthesise,
)
from speech.audio import write_audio
from speech.augment import limit_peak
from speech.augment_voice import pseudo_whisper
from text.normalize import normalize_transcript

log = logging.getLogger(__name__)

SPLITS = ("train", "dev", "test", "test_ood")


@dataclass
class SpeechCorpusConfig:
    """What to generate."""

    out_dir: str = "data/speech"
    """Output folder."""
    langs: list[str] = field(default_factory=lambda: ["deu_Latn", "spa_Latn", "ita_Latn", "swh_Latn",
                                                      "ukr_Cyrl", "hin_Deva", "arb_Arab", "kat_Geor"])
    """Languages as iso639-3_Script codes."""
    train_per_lang: int = 1000
    """Training utterances per language."""
    dev_per_lang: int = 40
    """Development utterances per language (hand-written sentences)."""
    test_per_lang: int = 100
    """Held-out test utterances per language (hand-written sentences never used in training)."""
    test_ood_per_lang: int = 100
    """Out-of-domain test utterances per language (held-out text source and voice qualities)."""
    speakers_per_lang: int = 12
    """Distinct synthetic speakers per language for train, dev and test."""
    ood_speakers_per_lang: int = 8
    """Distinct speakers per language for test_ood: two per held-out quality, the rest new training-quality voices."""
    heldout_speakers_per_lang: int = 0
    """With N > 0, dev and test are each spoken by N new speakers per language (training voice qualities, names
    ``<lang>-devNN`` / ``<lang>-tstNN``) that training never hears, for unseen-voice TTS and speaker verification;
    train and test_ood stay as with 0 (0: train, dev and test share the ``speakers_per_lang`` speakers)."""
    qualities: dict[str, float] = field(default_factory=lambda: {
        "modal": 0.35, "creaky": 0.1, "klatt": 0.1, "breathy": 0.1, "formant": 0.15, "pitch": 0.1, "band": 0.1,
        "flite": 0.2, "festival": 0.1})
    """Voice qualities of train/dev/test speakers and their weights (each available one gets a speaker first;
    engines that don't speak a language are passed over)."""
    heldout_qualities: list[str] = field(default_factory=lambda: ["whisper", "klatt_hi", "extreme_prosody"])
    """Voice qualities only test_ood hears."""
    whisper_share: float = 0.0
    """Share of training utterances whispered by signal processing: the speaker's own rendering, its LPC envelopes
    re-excited by noise (``speech.augment_voice.pseudo_whisper``, a random pre-emphasis 0-0.7), written once here
    so that training pays nothing for it. Manifest rows say ``voice_quality: lpc_whisper``. espeak-ng's whisper
    variants, a different whisper, stay held out for test_ood; dev, test and test_ood are the same as with 0."""
    varied_share: float = 0.0
    """Share of training utterances spoken instead by ``varied_speakers_per_lang`` extra voices of quality ``varied``
    (a new espeak-ng variant each: vocal-tract length, formants, flutter, roughness, synthesiser, breath under partial
    voicing; ``voices.random_variant``), drawn from streams of their own: the other rows, their sentences, dev, test
    and test_ood stay as with 0."""
    varied_speakers_per_lang: int = 12
    """How many ``varied`` voices per language share those utterances."""
    varied_voicing: list[int] = field(default_factory=lambda: list(VARIED_VOICING))
    """Voicing range (percent) of the breathing half of the ``varied`` voices: below about 30 they whisper. espeak-ng's
    own whisper variants, which only test_ood speaks, use 17 and 20."""
    varied_rate: list[int] = field(default_factory=lambda: list(SPEAKER_RATE))
    """Speaking rates (espeak-ng words a minute, before the per-utterance jitter of +-15) of the ``varied`` voices;
    the other training voices speak at 140-185, test_ood's extreme-prosody voices at 95-115 or 215-250."""
    varied_pitch: list[int] = field(default_factory=lambda: list(VARIED_PITCH))
    """espeak-ng pitch range (0-99) of the ``varied`` voices; the other training voices keep 25-75, test_ood's
    extreme-prosody voices 0-15 or 85-99 (which the varied voices' whole range now overlaps: their rates stay
    unseen)."""
    recorded_share: float = 0.2
    """Share of training utterances spoken by festival's diphone voices of the language (recordings of real speakers,
    where Debian has them: Italian, Hindi), ``recorded_speakers_per_lang`` speakers made from them
    (``voices.recorded_speaker``), from a stream of their own: other languages, dev, test and test_ood are as with 0."""
    recorded_speakers_per_lang: int = 6
    recorded_heldout: list[str] = field(default_factory=lambda: ["lp_diphone"])
    """festival voices that no training row speaks (``benchmarks/asr_recorded_voices.sh`` reads test_ood's
    sentences in every installed one)."""
    whisper_voicing: list[float] = field(default_factory=lambda: [0.0, 0.0])
    """Range of the voiced rendering's share kept under a whispered utterance's noise (drawn per utterance): 0 is a
    pure whisper; a little voicing is what a half-whispered voice keeps."""
    source_weights: dict[str, float] = field(default_factory=lambda: {
        "sentences": 0.25, "real": 0.25, "lexicon": 0.2, "cldr": 0.1, "numbers": 0.1, "mixed": 0.1})
    """Share of training text drawn from each source (``real``: text_real's train split, where built)."""
    text_real_dir: str = "data/text_real"
    """The text_real corpus (``python scripts/make_corpus.py corpus=text_real``): ``parallel/train.jsonl`` feeds
    training, ``parallel/test_ood.jsonl`` (held-out packages) test_ood. Missing: skipped with a log line."""
    text_files: dict[str, str] = field(default_factory=dict)
    """Extra user text per language (``{lang: path}``), one sentence a line, used for training."""
    seed: int = 0
    """Seed for text, voices and splits."""
    workers: int = 2
    """Parallel renderers."""
    max_words: int = 24
    """Longer sentences are skipped (keeps utterances under ~10 s)."""


@dataclass
class Job:
    split: str
    lang: str
    idx: int
    text: str
    source: str
    sp: Speaker
    rate: int
    whisper: float | None = None
    """Pre-emphasis of a training utterance whispered by signal processing; None: as the speaker speaks."""
    voicing: float = 0.0
    """Share of the voiced rendering kept under the whisper."""

    @property
    def speaker(self) -> str:
        return self.sp.name

    @property
    def quality(self) -> str:
        return self.sp.quality if self.whisper is None else "lpc_whisper"

    @property
    def voice(self) -> str:
        engine = QUALITIES[self.sp.quality].engine
        return f"{spec(self.lang).espeak}+{self.sp.variant}" if engine == "espeak-ng" else f"{engine}:{self.sp.variant}"

    @property
    def rel_audio(self) -> str:
        # Named by what is rendered (text, voice, rate, whispering), not only by position: a rebuild after the text
        # or the voices changed (text_real built since, other seeds or qualities) renders afresh instead of reusing a
        # file that says something else. Whispered renderings end in "_w".
        key = json.dumps([self.text, self.voice, asdict(self.sp), self.rate, self.whisper, self.voicing])
        tag = hashlib.blake2s(key.encode("utf-8"), digest_size=4).hexdigest()
        tail = "" if self.whisper is None else "_w"
        return f"{self.split}/{self.lang}/{self.lang}_{self.split}_{self.idx:05d}_{tag}{tail}.wav"


def _speakers(lang: str, cfg: SpeechCorpusConfig, rng: random.Random) -> tuple[list[Speaker], list[Speaker]]:
    """Speakers of train/dev/test, and of test_ood (held-out qualities first, then new training-quality voices)."""
    bad = set(cfg.heldout_qualities) & set(cfg.qualities)
    if bad or not set(cfg.heldout_qualities) <= set(QUALITIES) or not set(cfg.qualities) <= set(QUALITIES):
        raise ValueError(f"voice qualities must be known ({', '.join(QUALITIES)}) and training ones not held out "
                         f"({sorted(bad)}); got qualities={list(cfg.qualities)}, held out={cfg.heldout_qualities}")
    weights = {q: w for q, w in cfg.qualities.items() if w > 0 and available(q, lang)}
    if not weights:
        raise RuntimeError(f"no voice quality of {list(cfg.qualities)} can speak {lang}")
    order = sorted(weights, key=lambda q: -weights[q])[: cfg.speakers_per_lang]
    while len(order) < cfg.speakers_per_lang:
        order.append(rng.choices(list(weights), weights=list(weights.values()))[0])
    train = [make_speaker(f"{lang}-spk{k:02d}", q, rng) for k, q in enumerate(order)]
    held = [q for q in cfg.heldout_qualities if available(q, lang)]
    ood_order = [q for q in held for _ in range(2)][: cfg.ood_speakers_per_lang]
    while len(ood_order) < cfg.ood_speakers_per_lang:
        ood_order.append(rng.choices(list(weights), weights=list(weights.values()))[0])
    ood = [make_speaker(f"{lang}-ood{k:02d}", q, rng) for k, q in enumerate(ood_order)]
    return train, ood


def _heldout_speakers(lang: str, cfg: SpeechCorpusConfig) -> dict[str, list[Speaker]]:
    """New speakers of dev and test (``heldout_speakers_per_lang`` each), none of them in training.

    Their own random stream, so train and test_ood are the same utterances in the same voices as without them.
    Qualities are drawn by weight without replacement (then with), so a few speakers still span several qualities.
    """
    n = cfg.heldout_speakers_per_lang
    if n < 0:
        raise ValueError(f"heldout_speakers_per_lang must be 0 or more, got {n}")
    if n == 0:
        return {}
    rng = random.Random(f"{cfg.seed}:{lang}:heldout")
    weights = {q: w for q, w in cfg.qualities.items() if w > 0 and available(q, lang)}
    out: dict[str, list[Speaker]] = {}
    for split, tag in (("dev", "dev"), ("test", "tst")):
        order = sorted(weights, key=lambda q: -rng.random() ** (1 / weights[q]))[:n]
        while len(order) < n:
            order.append(rng.choices(list(weights), weights=list(weights.values()))[0])
        out[split] = [make_speaker(f"{lang}-{tag}{k:02d}", q, rng) for k, q in enumerate(order)]
    return out


def _draw(lang: str, weights: dict[str, float], pool: dict[str, list[str]], rng: random.Random) -> tuple[str, str]:
    source = rng.choices(list(weights), weights=list(weights.values()))[0]
    if source in pool:
        return (rng.choice(pool[source]) if pool[source] else ""), source
    return GENERATORS[source](lang, rng) or "", source


def _real(cfg: SpeechCorpusConfig, split: str, lang: str) -> list[str]:
    """text_real sentences of ``lang`` that meet the corpus's alphabet and length limits."""
    found = real_sentences(str(Path(cfg.text_real_dir) / "parallel" / f"{split}.jsonl"), tuple(cfg.langs))
    return [s for s in found.get(lang, ()) if usable(s, lang, cfg.max_words, min_words=3)]


def _ood_text(lang: str, cfg: SpeechCorpusConfig, spare: list[str], taken: set[str],
              rng: random.Random) -> list[tuple[str, str]]:
    """Out-of-domain test text: text_real's held-out packages, topped up with hand-written sentences kept out of train.

    ``spare`` is the hand-written list after test and dev; the sentences used here are removed from it.
    """
    items: list[tuple[str, str]] = []
    real = _real(cfg, "test_ood", lang)
    rng.shuffle(real)
    for text in real:
        norm = normalize_transcript(text, lang)
        if len(items) < cfg.test_ood_per_lang and norm not in taken:
            taken.add(norm)
            items.append((text, "text_real_ood"))
    if len(items) < cfg.test_ood_per_lang:
        log.info("%s: %d test_ood sentences from text_real's held-out packages; the other %d are hand-written "
                 "sentences kept out of training", lang, len(items), cfg.test_ood_per_lang - len(items))
    while spare and len(items) < cfg.test_ood_per_lang:
        text = spare.pop(0)
        norm = normalize_transcript(text, lang)
        if norm not in taken and usable(text, lang, cfg.max_words):
            taken.add(norm)
            items.append((text, "sentences_heldout"))
    return items


def _split_sentences(lang: str, cfg: SpeechCorpusConfig, rng: random.Random) -> dict[str, list[tuple[str, str]]]:
    """Hand-written sentences go to test, dev, (test_ood where text_real lacks it), then train; other text fills train.

    A language without enough hand-written sentences gets generated dev/test text instead, still disjoint from
    training. Training also draws text_real's train split (``real``), never a sentence of dev, test or test_ood.
    """
    written = list(sentence_list(lang))
    rng.shuffle(written)
    n_held = cfg.test_per_lang + cfg.dev_per_lang
    held_items = [(s, "sentences") for s in written[:n_held]]
    spare = written[n_held:]
    seen = {normalize_transcript(s, lang) for s, _ in held_items}
    ood = _ood_text(lang, cfg, spare, seen, rng)
    pool = {"sentences": spare}
    if cfg.source_weights.get("real", 0) > 0:
        pool["real"] = _real(cfg, "train", lang)
    if lang in cfg.text_files:
        pool["user"] = list(user_sentences(cfg.text_files[lang]))
    weights = {k: v for k, v in cfg.source_weights.items() if k in GENERATORS or pool.get(k)}
    if "user" in pool:
        weights["user"] = max(weights.values())
    generated = {k: v for k, v in weights.items() if k in GENERATORS}
    budget = 50 * (cfg.train_per_lang + n_held)
    while len(held_items) < n_held and budget > 0 and generated:
        budget -= 1
        text, source = _draw(lang, generated, pool, rng)
        norm = normalize_transcript(text, lang)
        if norm and norm not in seen and len(text.split()) <= cfg.max_words:
            seen.add(norm)
            held_items.append((text, source))
    held = set(seen)
    train: list[tuple[str, str]] = []
    while len(train) < cfg.train_per_lang and budget > 0:
        budget -= 1
        text, source = _draw(lang, weights, pool, rng)
        norm = normalize_transcript(text, lang)
        # Hand-written, real and user sentences may repeat in training (a new voice each time); generated text may not.
        if not norm or norm in held or (norm in seen and source not in pool) or len(text.split()) > cfg.max_words:
            continue
        seen.add(norm)
        train.append((text, source))
    split = {"train": train, "dev": held_items[cfg.test_per_lang :], "test": held_items[: cfg.test_per_lang],
             "test_ood": ood}
    norms = {k: {normalize_transcript(t, lang) for t, _ in v} for k, v in split.items()}
    for a, b in (("train", "test_ood"), ("train", "test"), ("train", "dev"), ("test", "test_ood"), ("dev", "test_ood")):
        assert not norms[a] & norms[b], f"{lang}: {a} and {b} share sentences: {sorted(norms[a] & norms[b])[:3]}"
    return split


def _recorded_speakers(lang: str, cfg: SpeechCorpusConfig) -> list[Speaker]:
    """The ``recorded`` training speakers of ``lang``: its installed festival diphone voices that are not held out,
    in turn, each with its own pitch, vocal tract and tempo; none where it has no such voice."""
    if not cfg.recorded_share:
        return []
    wanted = [v for v in festival_voices(lang, installed=False) if v not in cfg.recorded_heldout]
    voices = [v for v in wanted if festival_installed(v)]
    if wanted and not voices:
        log.warning("%s: festival's %s not installed, so no recorded voices in training (bash scripts/setup.sh "
                    "installs them)", lang, ", ".join(wanted))
    rng = random.Random(f"{cfg.seed}:{lang}:recorded_speakers")
    return [recorded_speaker(f"{lang}-rec{k:02d}", voices[k % len(voices)], rng)
            for k in range(cfg.recorded_speakers_per_lang if voices else 0)]


def _range(cfg: SpeechCorpusConfig, name: str, lowest: float, highest: float, unit: str) -> tuple[Any, Any]:
    """``cfg.<name>`` as (low, high), checked to be a range within ``lowest``-``highest``."""
    value = list(getattr(cfg, name))
    if len(value) != 2 or not lowest <= value[0] <= value[1] <= highest:
        raise ValueError(f"corpus.{name}={value} must be [low, high] within {lowest}-{highest} ({unit})")
    return value[0], value[1]


def plan(cfg: SpeechCorpusConfig) -> list[Job]:
    """Every utterance to render, fixed by the seed."""
    for name in ("whisper_share", "varied_share", "recorded_share"):
        if not 0.0 <= getattr(cfg, name) <= 1.0:
            raise ValueError(f"corpus.{name}={getattr(cfg, name)} must be in [0, 1]")
    voicing = _range(cfg, "varied_voicing", 0, 100, "percent")
    rate = _range(cfg, "varied_rate", 50, 400, "words a minute")
    pitch = _range(cfg, "varied_pitch", 0, 99, "espeak-ng pitch")
    for name in ("varied", "recorded"):
        if getattr(cfg, f"{name}_share") and getattr(cfg, f"{name}_speakers_per_lang") < 1:
            raise ValueError(f"corpus.{name}_speakers_per_lang={getattr(cfg, f'{name}_speakers_per_lang')} must be "
                             "1 or more")
    lo, hi = _range(cfg, "whisper_voicing", 0.0, 1.0, "a share")
    jobs: list[Job] = []
    for lang in cfg.langs:
        spec(lang)
        rng = random.Random(f"{cfg.seed}:{lang}")
        whisper_rng = random.Random(f"{cfg.seed}:{lang}:whisper")  # its own stream: the rest as with whisper_share 0
        voicing_rng = random.Random(f"{cfg.seed}:{lang}:voicing")
        speakers, ood_speakers = _speakers(lang, cfg, rng)
        heldout = _heldout_speakers(lang, cfg)
        varied_rng = random.Random(f"{cfg.seed}:{lang}:varied")
        varied = [make_speaker(f"{lang}-var{k:02d}", "varied", varied_rng, voicing, rate, pitch)
                  for k in range(cfg.varied_speakers_per_lang if cfg.varied_share else 0)]
        recorded = _recorded_speakers(lang, cfg)
        recorded_rng = random.Random(f"{cfg.seed}:{lang}:recorded")
        for split, items in _split_sentences(lang, cfg, rng).items():
            voices = ood_speakers if split == "test_ood" else speakers
            for idx, (text, source) in enumerate(items):
                s = voices[rng.randrange(len(voices))]
                if split in heldout:  # drawn above all the same, so the main stream stays as without held-out voices
                    s = heldout[split][idx % len(heldout[split])]
                job = Job(split, lang, idx, text, source, s, s.rate + rng.randint(-15, 15))
                if split == "train" and varied and varied_rng.random() < cfg.varied_share:
                    v = varied[varied_rng.randrange(len(varied))]  # the main stream's rate jitter kept
                    job.sp, job.rate = v, v.rate + job.rate - s.rate
                if split == "train" and recorded and recorded_rng.random() < cfg.recorded_share:
                    job.sp = recorded[recorded_rng.randrange(len(recorded))]
                    job.rate = job.sp.rate
                if split == "train" and cfg.whisper_share and whisper_rng.random() < cfg.whisper_share:
                    job.whisper = whisper_rng.uniform(0.0, 0.7)
                    job.voicing = round(voicing_rng.uniform(lo, hi), 2)  # its own stream: the same rows and tilts
                jobs.append(job)
    return jobs


def render(job: Job, root: Path) -> dict[str, Any]:
    """Synthesise one utterance (skipped when its file already exists) and return its manifest row."""
    path = root / job.rel_audio
    if not path.exists():
        try:
            wav = synthesise(job.sp, spec(job.lang).espeak, job.text, job.rate, seed=job.idx)
            if job.whisper is not None:
                noise = pseudo_whisper(wav, np.random.default_rng(job.idx), tilt=job.whisper)
                wav = limit_peak((1.0 - job.voicing) * noise + job.voicing * wav)
        except RuntimeError as e:
            raise RuntimeError(f"{job.rel_audio}: {e}") from e
        write_audio(path, wav)
    duration = sf.info(str(path)).duration
    return {"audio": job.rel_audio, "text": job.text, "lang": job.lang, **speaker_fields(job.sp),
            "voice_quality": job.quality, "duration": round(float(duration), 3), "source": job.source}


@CORPUS_BUILDERS.register("speech")
def build_speech_corpus(cfg: SpeechCorpusConfig) -> dict[str, Any]:
    """Render the corpus, write the manifests atomically and return summary statistics."""
    if shutil.which("espeak-ng") is None:
        raise RuntimeError("espeak-ng is not installed (apt-get install espeak-ng)")
    root = Path(cfg.out_dir)
    root.mkdir(parents=True, exist_ok=True)
    jobs = plan(cfg)
    rows: list[dict[str, Any] | None] = [None] * len(jobs)
    with ThreadPoolExecutor(max(1, cfg.workers)) as pool:
        futures = {pool.submit(render, job, root): i for i, job in enumerate(jobs)}
        for fut in tqdm(futures, total=len(jobs), desc="rendering", unit="utt"):
            rows[futures[fut]] = fut.result()
    _remove_stale(root, jobs)
    stats: dict[str, Any] = {"config": asdict(cfg), "splits": {}}
    for split in SPLITS:
        split_rows = [r for r, j in zip(rows, jobs) if j.split == split and r is not None]
        write_jsonl(root / f"{split}.jsonl", split_rows)
        stats["splits"][split] = {
            "utterances": len(split_rows), "hours": round(sum(r["duration"] for r in split_rows) / 3600, 3),
            "langs": sorted({r["lang"] for r in split_rows}),
            "voice_qualities": _counts(split_rows, "voice_quality"), "sources": _counts(split_rows, "source"),
        }
    stats["test_ood_by_lang"] = _counts([r for r in rows if r and r["audio"].startswith("test_ood/")], "lang")
    with atomic_open(root / "corpus.json", "w", encoding="utf-8") as f:
        json.dump(stats, f, indent=2, ensure_ascii=False)
    return stats


def _remove_stale(root: Path, jobs: list[Job]) -> None:
    """Delete this builder's renderings that the plan no longer names (an earlier build's text or voices)."""
    keep = {job.rel_audio for job in jobs}
    stale = [p for split, lang in {(j.split, j.lang) for j in jobs}
             for p in (root / split / lang).glob(f"{lang}_{split}_[0-9][0-9][0-9][0-9][0-9]*.wav")
             if p.relative_to(root).as_posix() not in keep]
    for p in stale:
        p.unlink()
    if stale:
        log.info("removed %d renderings of an earlier build that the plan no longer names", len(stale))


def _counts(rows: list[dict[str, Any]], key: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for r in rows:
        out[r[key]] = out.get(r[key], 0) + 1
    return dict(sorted(out.items()))
