"""Real tunes in the music corpus's layout: the public-domain tune books that ship with music21, for judging CLaMP 3
on music its generator never made.

python scripts/make_corpus.py corpus=music_real [corpus.audio=true]

Reads every ``*.abc`` of each collection folder under ``source_dir`` (a file may hold many tunes: it splits on
``X:``), keeps the tunes whose genre is one of the suite's (``music_real_abc``), and writes ``abc/<id>.abc`` (the tune
cleaned to the corpus's ABC), ``midi/<id>.mid`` (abc2midi), optionally ``audio/<id>.wav`` (fluidsynth, the first
``excerpt_seconds``), and manifests with the corpus's rows. Descriptions come from the generated corpus's own
realiser (``music_text.realise``), fed only with what the header gives: the genre, the key (tonic and mode), the
meter, and the tempo where a ``Q:`` gives one; each description states all of those it has.

Splits: ``train_real`` and ``test_real`` divide the ``tune_collections`` by tune (by normalised title, so a tune and
its namesakes stay on one side); ``test_heldout`` holds every tune of the ``heldout`` collections whose title no
``train_real`` tune has. Tunes that can't be used (no key field, no notes, a dance type the suite lacks, abc2midi
refusing them) go to ``failed.jsonl`` with the file, the ``X:`` number and the reason. A re-run keeps finished files.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import random
import re
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import soundfile as sf

from common.commands import CORPUS_BUILDERS
from common.io import atomic_open, write_jsonl
from datamodules.corpus.music import _write_if_changed, attribute_counts
from datamodules.corpus.music_real_abc import TuneError, clean_tune, midi_abc, parse_tune, split_tunes, strip_genre
from datamodules.corpus.music_render import SOUNDFONT, RenderError, abc_to_midi, check_tools, midi_to_audio
from datamodules.corpus.music_text import LANGS, TuneMeaning, realise
from datamodules.corpus.text import existing_corpus

log = logging.getLogger(__name__)
SPLITS = ("train_real", "test_real", "test_heldout")


def music21_corpus() -> str:
    """The folder of music21's bundled corpus ("" when music21 is not installed)."""
    spec = importlib.util.find_spec("music21")
    return str(Path(spec.origin).parent / "corpus") if spec and spec.origin else ""


@dataclass
class MusicRealConfig:
    """Which tune books to read and how to split them."""

    out_dir: str = "data/music_real"
    """Output folder."""
    source_dir: str = ""
    """Folder holding the collection folders ("": music21's bundled corpus)."""
    collections: dict[str, str] = field(default_factory=lambda: {
        "ryans": "ryansMammoth", "oneills": "oneills1850", "airds": "airdsAirs", "essen": "essenFolksong"})
    """Collection name -> its folder under ``source_dir``."""
    tune_collections: list[str] = field(default_factory=lambda: ["ryans"])
    """Collections split by tune into train_real and test_real."""
    heldout: list[str] = field(default_factory=lambda: ["oneills", "airds", "essen"])
    """Collections never trained on (test_heldout)."""
    test_fraction: float = 0.3
    """Share of the tune collections' titles that go to test_real."""
    langs: list[str] = field(default_factory=lambda: list(LANGS))
    """Description languages (a subset of datamodules.corpus.music_text.LANGS)."""
    audio: bool = False
    """Render audio too (the first ``excerpt_seconds`` of each tune through fluidsynth)."""
    excerpt_seconds: float = 12.0
    """Audio length at most."""
    soundfont: str = SOUNDFONT
    """General MIDI soundfont for fluidsynth."""
    gain: float = 0.5
    """fluidsynth gain."""
    workers: int = 2
    """Parallel processes for abc2midi and fluidsynth; 1 runs in-process."""
    seed: int = 0
    """Seed of the title split and of the descriptions' wording."""
    overwrite: bool = False
    """Rebuild even when corpus.json exists with this config (finished files are still reused)."""


def title_key(title: str) -> str:
    """A title normalised for matching namesakes across books: no dance word, article, punctuation or case."""
    t = strip_genre(title).lower()
    t = re.sub(r"\b(the|a|an)\b", " ", t)
    return re.sub(r"[^a-z0-9]+", "", t)


def in_test(key: str, cfg: MusicRealConfig) -> bool:
    """Whether a tune collection's title goes to test_real (a fixed hash of the seed and the title)."""
    digest = hashlib.sha1(f"{cfg.seed}:{key}".encode()).digest()
    return int.from_bytes(digest[:4], "big") / 2**32 < cfg.test_fraction


def describe_real(attrs: dict[str, Any], langs: list[str], seed: str) -> tuple[TuneMeaning, dict[str, str]]:
    """One meaning stating every attribute the header gave (key, meter, tempo), realised in each language."""
    facets = tuple(f for f in ("key", "meter", "tempo") if f in attrs)
    meaning = TuneMeaning(facets, random.Random(f"tempo:{seed}").choice(("word", "bpm")))
    return meaning, {lang: realise(meaning, attrs, lang, random.Random(f"{seed}:{lang}")) for lang in langs}


def read_collections(cfg: MusicRealConfig) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Every usable tune as a job ``{id, collection, source, title, abc, attributes}``, and the failures."""
    root = Path(cfg.source_dir or music21_corpus())
    jobs: list[dict[str, Any]] = []
    failed: list[dict[str, Any]] = []
    for name in dict.fromkeys(cfg.tune_collections + cfg.heldout):
        if name not in cfg.collections:
            raise KeyError(f"corpus.collections has no {name!r}; known: {', '.join(cfg.collections)}")
        folder = root / cfg.collections[name]
        files = sorted(folder.glob("*.abc"))
        if not files:
            raise FileNotFoundError(f"{folder}: no .abc files (is music21's corpus installed? corpus.source_dir)")
        for path in files:
            try:
                text = path.read_text(encoding="utf-8")
            except UnicodeDecodeError:
                text = path.read_text(encoding="latin-1")  # older tune books are Latin-1
            for number, tune_text in split_tunes(text):
                source = f"{path.relative_to(root)}:X{number}"
                try:
                    tune = parse_tune(number, tune_text, path.stem)
                except TuneError as e:
                    failed.append({"source": source, "collection": name, "error": f"{source}: {e}"})
                    continue
                rid = re.sub(r"[^A-Za-z0-9]+", "_", f"{name}-{path.stem}-{number}")
                title = tune.header.get("T", [""])[0]
                jobs.append({"id": rid, "collection": name, "source": source, "title": title,
                             "abc": clean_tune(tune, len(jobs) + 1), "attributes": tune.attributes})
    return jobs, failed


def assign_splits(jobs: list[dict[str, Any]], cfg: MusicRealConfig) -> tuple[dict[str, list[dict[str, Any]]],
                                                                              dict[str, int]]:
    """Jobs per split (ids made unique), and how many tunes were dropped: held-out tunes named like a train_real
    tune (``heldout_namesakes``), and second copies of a title within a test split (``test_duplicates``: some
    books hold a tune twice, e.g. O'Neill's files that overlap)."""
    out: dict[str, list[dict[str, Any]]] = {s: [] for s in SPLITS}
    seen: Counter[str] = Counter()
    for job in jobs:
        seen[job["id"]] += 1
        if seen[job["id"]] > 1:
            job["id"] += f"_{seen[job['id']]}"
        job["title_key"] = title_key(job["title"]) or job["id"]  # an untitled tune is its own
    dropped = {"heldout_namesakes": 0, "test_duplicates": 0}
    titles: dict[str, set[str]] = {s: set() for s in SPLITS}
    # the tune collections first, so that every train_real title is known when the held-out books are read
    ordered = [j for j in jobs if j["collection"] in cfg.tune_collections]
    ordered += [j for j in jobs if j["collection"] in cfg.heldout and j["collection"] not in cfg.tune_collections]
    for job in ordered:
        if job["collection"] in cfg.tune_collections:
            split = "test_real" if in_test(job["title_key"], cfg) else "train_real"
        else:
            split = "test_heldout"
        if split == "test_heldout" and job["title_key"] in titles["train_real"]:
            dropped["heldout_namesakes"] += 1
        elif split != "train_real" and job["title_key"] in titles[split]:
            dropped["test_duplicates"] += 1
        else:
            out[split].append(job)
            titles[split].add(job["title_key"])
    return out, dropped


def render_real(job: dict[str, Any], root: str, cfg: MusicRealConfig) -> dict[str, Any]:
    """Write one tune's ABC, MIDI (and audio); its manifest row, or ``{"error": ...}`` naming the source."""
    base, rid = Path(root), job["id"]
    rel = {"abc": f"abc/{rid}.abc", "midi": f"midi/{rid}.mid", "audio": f"audio/{rid}.wav"}
    changed = _write_if_changed(base / rel["abc"], job["abc"])
    row: dict[str, Any] = {"id": rid, "title": job["title"], "collection": job["collection"], "source": job["source"],
                           "abc": rel["abc"], "midi": rel["midi"]}
    try:
        if changed or not (base / rel["midi"]).is_file():
            abc_to_midi(midi_abc(job["abc"], job["attributes"]), base / rel["midi"], job["source"])
        if cfg.audio:
            if changed or not (base / rel["audio"]).is_file():
                row["duration"] = round(midi_to_audio(base / rel["midi"], base / rel["audio"], job["source"],
                                                      cfg.soundfont, cfg.excerpt_seconds, cfg.gain), 3)
            else:
                row["duration"] = round(float(sf.info(str(base / rel["audio"])).duration), 3)
            row["audio"] = rel["audio"]
    except (RenderError, OSError, RuntimeError) as e:
        return {"id": rid, "source": job["source"], "collection": job["collection"], "error": str(e)}
    meaning, texts = describe_real(job["attributes"], cfg.langs, f"{cfg.seed}:{rid}")
    return {**row, "attributes": job["attributes"], "meaning": meaning.to_json(), "texts": texts}


@CORPUS_BUILDERS.register("music_real")
def build_music_real(cfg: MusicRealConfig) -> dict[str, Any]:
    """Write the real-tune corpus (skipped when it exists with the same config) and return its statistics."""
    root = Path(cfg.out_dir)
    stats_path = root / "corpus.json"
    existing = existing_corpus(stats_path, asdict(cfg), cfg.overwrite)
    if existing is not None:
        return existing
    unknown = sorted(set(cfg.langs) - set(LANGS))
    if unknown:
        raise KeyError(f"corpus.langs: no music descriptions for {unknown}; known: {', '.join(LANGS)}")
    overlap = set(cfg.tune_collections) & set(cfg.heldout)
    if overlap:
        raise ValueError(f"corpus.heldout and corpus.tune_collections share {sorted(overlap)}")
    check_tools(cfg.audio, cfg.soundfont)
    stats_path.unlink(missing_ok=True)
    t0 = time.perf_counter()
    jobs, failed = read_collections(cfg)
    splits, dropped = assign_splits(jobs, cfg)
    flat = [j for s in SPLITS for j in splits[s]]
    if cfg.workers > 1:
        with ProcessPoolExecutor(cfg.workers) as pool:
            results = list(pool.map(render_real, flat, [str(root)] * len(flat), [cfg] * len(flat), chunksize=16))
    else:
        results = [render_real(j, str(root), cfg) for j in flat]
    by_id = {r["id"]: r for r in results}
    failed += [r for r in results if "error" in r]
    for r in failed:
        log.debug("music_real: skipped %s", r["error"])
    write_jsonl(root / "failed.jsonl", failed)
    reasons = Counter(re.sub(r"^[^:]+:X[^:]*: ", "", r["error"]) for r in failed)
    stats: dict[str, Any] = {"config": asdict(cfg), "langs": list(cfg.langs), "splits": {}, "failed": len(failed),
                             "failed_by_reason": dict(reasons.most_common()), "dropped": dropped,
                             "described": ["genre", "key", "mode", "meter", "tempo (where Q: gives it)"]}
    log.info("music_real: %d tunes read, %d skipped (failed.jsonl)", len(jobs), len(failed))
    for split in SPLITS:
        rows = [by_id[j["id"]] for j in splits[split] if "error" not in by_id[j["id"]]]
        write_jsonl(root / f"{split}.jsonl", rows)
        stats["splits"][split] = {"tunes": len(rows), "collections": dict(Counter(r["collection"] for r in rows)),
                                  "genre": attribute_counts(rows, "genre"), "mode": attribute_counts(rows, "mode"),
                                  "meter": attribute_counts(rows, "meter"), "with_tempo": sum("tempo" in r["attributes"]
                                                                                     for r in rows)}
    stats["build_seconds"] = round(time.perf_counter() - t0, 1)
    with atomic_open(stats_path, "w", encoding="utf-8") as f:
        json.dump(stats, f, indent=2, ensure_ascii=False)
    return stats
