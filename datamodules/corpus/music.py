"""Generated music corpus: tunes of real forms in ABC, rendered to MIDI and audio, described in seven languages.

python scripts/make_corpus.py corpus=music [corpus.train=1500 corpus.audio=false]

Writes under ``out_dir``: ``abc/<id>.abc``, ``midi/<id>.mid`` (abc2midi), ``audio/<id>.wav`` (16 kHz mono, the A
part once through fluidsynth and the TimGM6mb soundfont, at most ``excerpt_seconds``), manifests
``{train,dev,test,test_combo}.jsonl`` with one row per tune (``id``, ``abc``, ``midi``, ``audio``, ``duration``,
``title``, ``attributes``, ``meaning``, ``texts`` {lang: description}), ``failed.jsonl`` and ``corpus.json``
(config, counts, languages, held-out combinations, failures). Every tune is new (dev and test tunes are never in
train); ``test_combo`` holds only genre x key combinations that no other split has. A re-run keeps finished
files and renders the rest; a tune that fails to render is reported and left out.
"""

from __future__ import annotations

import json
import logging
import random
import tempfile
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import soundfile as sf

from common.commands import CORPUS_BUILDERS
from common.io import atomic_open, write_jsonl
from datamodules.corpus.music_abc import excerpt_abc, title, tune_abc
from datamodules.corpus.music_compose import CONTOURS, compose
from datamodules.corpus.music_forms import FORMS, METERS, tempo_word
from datamodules.corpus.music_render import SOUNDFONT, RenderError, abc_to_midi, check_tools, midi_to_audio
from datamodules.corpus.music_text import LANGS, describe
from datamodules.corpus.music_theory import KEYS, REGISTERS
from datamodules.corpus.text import existing_corpus

log = logging.getLogger(__name__)

SPLITS = ("train", "dev", "test", "test_combo")
MODE_WEIGHTS = {"major": 0.45, "minor": 0.25, "dorian": 0.15, "mixolydian": 0.15}
"""How often each mode is drawn (chorales are major or minor)."""
DYNAMICS = ("p", "mf", "f")


@dataclass
class MusicCorpusConfig:
    """What to generate."""

    out_dir: str = "data/music"
    """Output folder."""
    langs: list[str] = field(default_factory=lambda: list(LANGS))
    """Description languages (a subset of datamodules.corpus.music_text.LANGS)."""
    train: int = 1500
    """Training tunes."""
    dev: int = 150
    """Development tunes (new tunes, seen combinations)."""
    test: int = 300
    """Test tunes (new tunes, seen combinations)."""
    test_combo: int = 150
    """Test tunes whose genre x key combination no other split has."""
    holdout_combos: int = 8
    """Genre x key (tonic and mode) combinations kept for test_combo."""
    audio: bool = True
    """Render audio (off: ABC and MIDI only, rows have no ``audio``)."""
    excerpt_seconds: float = 12.0
    """Audio is the A part once, cut at this length."""
    soundfont: str = SOUNDFONT
    """General MIDI soundfont for fluidsynth."""
    gain: float = 0.5
    """fluidsynth gain (fixed, so the dynamics stay audible as loudness)."""
    workers: int = 2
    """Parallel processes (composing, abc2midi, fluidsynth); 1 runs in-process."""
    seed: int = 0
    """Seed of attributes, tunes, held-out combinations and descriptions."""
    overwrite: bool = False
    """Rebuild even when corpus.json exists with this config (finished files are still reused)."""


def combos() -> list[tuple[str, str, str]]:
    """Every (genre, tonic, mode) the composer writes."""
    return [(g, t, m) for g in FORMS for m in KEYS for t in KEYS[m]
            if FORMS[g].voices == 1 or m in ("major", "minor")]


def holdout(cfg: MusicCorpusConfig) -> list[tuple[str, str, str]]:
    """The genre x key combinations only test_combo uses (at most one per genre, so each genre stays in train)."""
    rng = random.Random(f"{cfg.seed}:music:holdout")
    pool = combos()
    rng.shuffle(pool)
    held: list[tuple[str, str, str]] = []
    for c in pool:
        if len(held) < cfg.holdout_combos and sum(h[0] == c[0] for h in held) < max(1, cfg.holdout_combos // 7 + 1):
            held.append(c)
    return sorted(held)


def sample_attributes(rng: random.Random, combo: tuple[str, str, str] | None = None) -> dict[str, Any]:
    """A random attribute set; ``combo`` fixes genre, tonic and mode."""
    if combo is None:
        genre = rng.choice(sorted(FORMS))
        modes = ["major", "minor"] if FORMS[genre].voices == 4 else list(MODE_WEIGHTS)
        mode = rng.choices(modes, weights=[MODE_WEIGHTS[m] for m in modes])[0]
        combo = (genre, rng.choice(KEYS[mode]), mode)
    genre, tonic, mode = combo
    form = FORMS[genre]
    meter = rng.choice(form.meters)
    tempo = rng.randint(*form.tempo)
    return {"key": tonic, "mode": mode, "meter": METERS[meter].name, "tempo": tempo,
            "tempo_word": tempo_word(tempo, METERS[meter]), "genre": genre,
            "instrument": rng.choice(form.instruments), "contour": rng.choice(CONTOURS),
            "register": rng.choice(sorted(REGISTERS)), "dynamics": rng.choice(DYNAMICS)}


def plan(cfg: MusicCorpusConfig) -> dict[str, list[dict[str, Any]]]:
    """Every tune's id, seed and attributes per split, fixed by the seed (each tune has its own seed, so no tune
    repeats across splits; the tests check the written ABC)."""
    held = set(holdout(cfg))
    out: dict[str, list[dict[str, Any]]] = {}
    for split in SPLITS:
        rng = random.Random(f"{cfg.seed}:music:{split}")
        jobs: list[dict[str, Any]] = []
        while len(jobs) < int(getattr(cfg, split)):
            combo = rng.choice(sorted(held)) if split == "test_combo" else None
            attrs = sample_attributes(rng, combo)
            if split != "test_combo" and (attrs["genre"], attrs["key"], attrs["mode"]) in held:
                continue
            jobs.append({"id": f"{split}-{len(jobs):05d}", "seed": f"{cfg.seed}:{split}:{len(jobs)}",
                         "attributes": attrs})
        out[split] = jobs
    return out


def _write_if_changed(path: Path, text: str) -> bool:
    """Write ``text`` atomically unless the file already holds it; True when written."""
    if path.is_file() and path.read_text(encoding="utf-8") == text:
        return False
    with atomic_open(path, "w", encoding="utf-8") as f:
        f.write(text)
    return True


def render_tune(job: dict[str, Any], root: str, cfg: MusicCorpusConfig) -> dict[str, Any]:
    """Compose, write and render one tune (finished files are kept); its manifest row, or ``{"error": ...}``."""
    base, rid, attrs = Path(root), job["id"], job["attributes"]
    rel = {"abc": f"abc/{rid}.abc", "midi": f"midi/{rid}.mid", "audio": f"audio/{rid}.wav"}
    tune = compose(attrs, job["seed"])
    number = int(rid.rsplit("-", 1)[1]) + 1
    name = title(job["seed"])
    changed = _write_if_changed(base / rel["abc"], tune_abc(tune, number, name))
    row: dict[str, Any] = {"id": rid, "title": name, "abc": rel["abc"], "midi": rel["midi"]}
    try:
        if changed or not (base / rel["midi"]).is_file():
            abc_to_midi(tune_abc(tune, number, name), base / rel["midi"], rel["abc"])
        if cfg.audio:
            wav = base / rel["audio"]
            if changed or not wav.is_file():
                with tempfile.TemporaryDirectory(dir=base, prefix=".excerpt.") as tmp:
                    excerpt = Path(tmp) / "excerpt.mid"
                    abc_to_midi(excerpt_abc(tune, number), excerpt, f"{rel['abc']} (excerpt)")
                    row["duration"] = round(midi_to_audio(excerpt, wav, rel["abc"], cfg.soundfont,
                                                          cfg.excerpt_seconds, cfg.gain), 3)
            else:
                row["duration"] = round(float(sf.info(str(wav)).duration), 3)
            row["audio"] = rel["audio"]
    except (RenderError, OSError, RuntimeError) as e:
        return {"id": rid, "error": str(e)}
    meaning, texts = describe(attrs, cfg.langs, job["seed"])
    return {**row, "attributes": attrs, "meaning": meaning.to_json(), "texts": texts}


def attribute_counts(rows: list[dict[str, Any]], key: str) -> dict[str, int]:
    """How many rows have each value of ``attributes[key]`` (``"None"`` where a row lacks it), sorted by value."""
    return dict(sorted(Counter(str(r["attributes"].get(key)) for r in rows).items()))


@CORPUS_BUILDERS.register("music")
def build_music_corpus(cfg: MusicCorpusConfig) -> dict[str, Any]:
    """Write the corpus (skipped when it exists with the same config) and return its statistics."""
    root = Path(cfg.out_dir)
    stats_path = root / "corpus.json"
    existing = existing_corpus(stats_path, asdict(cfg), cfg.overwrite)
    if existing is not None:
        return existing
    unknown = sorted(set(cfg.langs) - set(LANGS))
    if unknown:
        raise KeyError(f"corpus.langs: no music descriptions for {unknown}; known: {', '.join(LANGS)}")
    check_tools(cfg.audio, cfg.soundfont)
    stats_path.unlink(missing_ok=True)  # a half-rebuilt corpus must not look finished
    t0 = time.perf_counter()
    jobs = plan(cfg)
    flat = [j for split in SPLITS for j in jobs[split]]
    if cfg.workers > 1:
        with ProcessPoolExecutor(cfg.workers) as pool:
            results = list(pool.map(render_tune, flat, [str(root)] * len(flat), [cfg] * len(flat), chunksize=8))
    else:
        results = [render_tune(j, str(root), cfg) for j in flat]
    by_id = {r["id"]: r for r in results}
    failed = [r for r in results if "error" in r]
    for r in failed:
        log.warning("music corpus: skipped %s", r["error"])
    write_jsonl(root / "failed.jsonl", failed)
    stats: dict[str, Any] = {"config": asdict(cfg), "langs": list(cfg.langs), "splits": {}, "failed": len(failed),
                             "held_out_combos": [{"genre": g, "key": t, "mode": m} for g, t, m in holdout(cfg)]}
    for split in SPLITS:
        rows = [by_id[j["id"]] for j in jobs[split] if "error" not in by_id[j["id"]]]
        write_jsonl(root / f"{split}.jsonl", rows)
        stats["splits"][split] = {"tunes": len(rows), "genre": attribute_counts(rows, "genre"),
                                  "mode": attribute_counts(rows, "mode"),
                                  "audio_seconds": round(sum(r.get("duration", 0.0) for r in rows), 1)}
        log.info("music corpus: %s written (%d tunes)", split, len(rows))
    stats["build_seconds"] = round(time.perf_counter() - t0, 1)
    with atomic_open(stats_path, "w", encoding="utf-8") as f:
        json.dump(stats, f, indent=2, ensure_ascii=False)
    return stats
