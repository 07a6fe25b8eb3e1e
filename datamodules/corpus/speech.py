"""Generated multilingual speech corpus: espeak-ng renders open-vocabulary text in many voices.

Writes ``<out>/<split>/<lang>/*.wav`` (16 kHz mono) and ``<out>/<split>.jsonl`` manifests with
``audio``, ``text``, ``lang``, ``speaker``, ``duration`` and ``source``. Sentences never repeat
across splits. Deterministic for a seed; a re-run keeps finished files and renders the rest.
"""

from __future__ import annotations

import json
import logging
import random
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
import soxr
from tqdm import tqdm

from common.commands import CORPUS_BUILDERS
from common.io import atomic_open, write_jsonl
from datamodules.corpus.languages import spec
from datamodules.corpus.text_sources import GENERATORS, sentence_list, user_sentences
from speech.audio import SAMPLE_RATE, write_audio
from text.normalize import normalize_transcript

log = logging.getLogger(__name__)

VARIANTS = ("m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "f5", "klatt", "klatt2", "klatt3",
            "croak", "Andy", "Annie", "Denis", "Hugo", "edward", "steph", "anika", "Diogo", "iven", "belinda",
            "david", "linda", "max", "paul")
"""espeak-ng voice variants; a speaker is a variant with its own pitch, range and rate."""


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
    speakers_per_lang: int = 12
    """Distinct synthetic speakers per language."""
    source_weights: dict[str, float] = field(default_factory=lambda: {
        "sentences": 0.3, "lexicon": 0.3, "cldr": 0.1, "numbers": 0.1, "mixed": 0.2})
    """Share of training text drawn from each source."""
    text_files: dict[str, str] = field(default_factory=dict)
    """Extra user text per language (``{lang: path}``), one sentence a line, used for training."""
    seed: int = 0
    """Seed for text, voices and splits."""
    workers: int = 2
    """Parallel espeak-ng renderers."""
    max_words: int = 24
    """Longer sentences are skipped (keeps utterances under ~10 s)."""


@dataclass
class Job:
    split: str
    lang: str
    idx: int
    text: str
    source: str
    speaker: str
    voice: str
    rate: int
    pitch: int
    range_: int

    @property
    def rel_audio(self) -> str:
        return f"{self.split}/{self.lang}/{self.lang}_{self.split}_{self.idx:05d}.wav"


def _speakers(lang: str, n: int, rng: random.Random) -> list[dict[str, Any]]:
    variants = rng.sample(VARIANTS, k=min(n, len(VARIANTS)))
    while len(variants) < n:
        variants.append(rng.choice(VARIANTS))
    return [{"variant": v, "pitch": rng.randint(25, 75), "range": rng.randint(30, 90), "rate": rng.randint(140, 185)}
            for v in variants]


def _draw(lang: str, weights: dict[str, float], pool: dict[str, list[str]], rng: random.Random) -> tuple[str, str]:
    source = rng.choices(list(weights), weights=list(weights.values()))[0]
    if source in pool:
        return (rng.choice(pool[source]) if pool[source] else ""), source
    return GENERATORS[source](lang, rng) or "", source


def _split_sentences(lang: str, cfg: SpeechCorpusConfig, rng: random.Random) -> dict[str, list[tuple[str, str]]]:
    """Hand-written sentences go to test, dev, then train; generated text fills train.

    A language without enough hand-written sentences gets generated dev/test text instead,
    still disjoint from training.
    """
    written = list(sentence_list(lang))
    rng.shuffle(written)
    n_held = cfg.test_per_lang + cfg.dev_per_lang
    held_items = [(s, "sentences") for s in written[:n_held]]
    pool = {"sentences": written[n_held:]}
    if lang in cfg.text_files:
        pool["user"] = list(user_sentences(cfg.text_files[lang]))
    weights = {k: v for k, v in cfg.source_weights.items() if k in GENERATORS or pool.get(k)}
    if "user" in pool:
        weights["user"] = max(weights.values())
    generated = {k: v for k, v in weights.items() if k in GENERATORS}
    seen = {normalize_transcript(s) for s, _ in held_items}
    budget = 50 * (cfg.train_per_lang + n_held)
    while len(held_items) < n_held and budget > 0 and generated:
        budget -= 1
        text, source = _draw(lang, generated, pool, rng)
        norm = normalize_transcript(text)
        if norm and norm not in seen and len(text.split()) <= cfg.max_words:
            seen.add(norm)
            held_items.append((text, source))
    held = set(seen)
    train: list[tuple[str, str]] = []
    while len(train) < cfg.train_per_lang and budget > 0:
        budget -= 1
        text, source = _draw(lang, weights, pool, rng)
        norm = normalize_transcript(text)
        # Hand-written and user sentences may repeat in training (a new voice each time); generated text may not.
        if not norm or norm in held or (norm in seen and source not in pool) or len(text.split()) > cfg.max_words:
            continue
        seen.add(norm)
        train.append((text, source))
    return {"train": train, "dev": held_items[cfg.test_per_lang :], "test": held_items[: cfg.test_per_lang]}


def plan(cfg: SpeechCorpusConfig) -> list[Job]:
    """Every utterance to render, fixed by the seed."""
    jobs: list[Job] = []
    for lang in cfg.langs:
        sp = spec(lang)
        rng = random.Random(f"{cfg.seed}:{lang}")
        speakers = _speakers(lang, cfg.speakers_per_lang, rng)
        for split, items in _split_sentences(lang, cfg, rng).items():
            for idx, (text, source) in enumerate(items):
                k = rng.randrange(len(speakers))
                s = speakers[k]
                jobs.append(Job(split, lang, idx, text, source, f"{lang}-spk{k:02d}", f"{sp.espeak}+{s['variant']}",
                                s["rate"] + rng.randint(-15, 15), s["pitch"], s["range"]))
    return jobs


def _espeak_text(text: str) -> str:
    # "[[" starts inline phonemes in espeak-ng; never let text act as markup.
    return text.replace("[", " ").replace("]", " ").replace("<", " ").replace(">", " ")


def render(job: Job, root: Path) -> dict[str, Any]:
    """Synthesise one utterance (skipped when its file already exists) and return its manifest row."""
    path = root / job.rel_audio
    if not path.exists():
        cmd = ["espeak-ng", "-v", job.voice, "-s", str(job.rate), "-p", str(job.pitch), "-a", "120",
               "-g", "2", "--stdout"]
        proc = subprocess.run(cmd, input=_espeak_text(job.text).encode("utf-8"), capture_output=True, timeout=120)
        if proc.returncode != 0 or len(proc.stdout) < 100:
            raise RuntimeError(f"espeak-ng failed for {job.rel_audio}: {proc.stderr.decode(errors='replace')}")
        import io

        wav, sr = sf.read(io.BytesIO(proc.stdout), dtype="float32")
        wav = soxr.resample(wav, sr, SAMPLE_RATE).astype(np.float32)
        nz = np.flatnonzero(np.abs(wav) > 1e-3)
        pad = int(0.1 * SAMPLE_RATE)
        if len(nz):
            wav = wav[max(0, nz[0] - pad) : nz[-1] + pad]
        write_audio(path, wav)
    duration = sf.info(str(path)).duration
    return {"audio": job.rel_audio, "text": job.text, "lang": job.lang, "speaker": job.speaker,
            "duration": round(float(duration), 3), "source": job.source}


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
    stats: dict[str, Any] = {"config": asdict(cfg), "splits": {}}
    for split in ("train", "dev", "test"):
        split_rows = [r for r, j in zip(rows, jobs) if j.split == split and r is not None]
        write_jsonl(root / f"{split}.jsonl", split_rows)
        stats["splits"][split] = {
            "utterances": len(split_rows), "hours": round(sum(r["duration"] for r in split_rows) / 3600, 3),
            "langs": sorted({r["lang"] for r in split_rows}),
        }
    with atomic_open(root / "corpus.json", "w", encoding="utf-8") as f:
        json.dump(stats, f, indent=2, ensure_ascii=False)
    return stats
