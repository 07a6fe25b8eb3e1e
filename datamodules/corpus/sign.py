"""Generated sign language corpus: MediaPipe Holistic keypoint sequences of a synthetic sign language, with
parallel translations into the shared grammar's spoken languages.

python scripts/make_corpus.py corpus=sign [corpus.train_sentences=1500 corpus.train_clips=4000]

Each sentence is a meaning drawn by the shared grammar's sampler: the grammar realises it in every spoken language
and the sign grammar (sign_grammar.py) in signs, so a clip's translations are exact. Writes under ``out_dir``:

- ``poses/<id>.npy``: float32 [T, 543, 4] = x, y, z (normalised image coordinates), confidence; lost points NaN
  with confidence 0 (layout: sign_layout.py);
- ``pose/<id>.pose`` for every ``pose_file_every``-th clip: the same sequence in pose-format (x, y in pixels);
- ``{train,dev,test,test_seen_signer}.jsonl``: ``{"id", "pose", "pose_file" (when written), "fps", "frames",
  "signer", "gloss", "texts": {lang: text}, "sentence_id", "split"}``;
- ``corpus.json``: config, statistics, signers, the lexicon; written last, so its presence means finished.

Splits: dev and test are held-out sentences signed by held-out signers; test_seen_signer is the test sentences
signed by training signers. A re-run keeps finished clips and writes the rest.
"""

from __future__ import annotations

import json
import logging
import random
import shutil
import time
import zlib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from common.commands import CORPUS_BUILDERS
from common.io import atomic_open, write_jsonl
from datamodules.corpus.grammar.meaning import Meaning
from datamodules.corpus.grammar.realise import REALISERS, realise
from datamodules.corpus.grammar.sampler import MeaningSampler
from datamodules.corpus.sign_grammar import gloss_string, sentence
from datamodules.corpus.sign_io import write_npy, write_pose
from datamodules.corpus.sign_lexicon import lexicon
from datamodules.corpus.sign_motion import articulate
from datamodules.corpus.sign_signer import Signer, signers
from datamodules.corpus.sign_skeleton import body_points, track
from datamodules.corpus.text import existing_corpus

log = logging.getLogger(__name__)

SPLITS = ("train", "dev", "test", "test_seen_signer")
STAMP = ".clips.json"
"""The config the clips on disk were made with (a re-run with another config starts over)."""


@dataclass
class SignCorpusConfig:
    """What to generate."""

    out_dir: str = "data/sign"
    """Output folder."""
    langs: list[str] = field(default_factory=lambda: list(REALISERS))
    """Translation languages (the shared grammar's; at least 6)."""
    train_sentences: int = 1500
    """Distinct training sentences."""
    dev_sentences: int = 100
    """Held-out development sentences."""
    test_sentences: int = 200
    """Held-out test sentences (also in test_seen_signer)."""
    train_clips: int = 4000
    """Training clips, spread evenly over the training sentences, each by another training signer."""
    eval_signers_per_sentence: int = 2
    """Held-out signers who sign each dev and test sentence."""
    signers: int = 20
    """Signers in all."""
    heldout_signers: int = 4
    """The last this many signers appear only in dev and test."""
    max_signs: int = 12
    """Longest sentence in signs (longer meanings are redrawn), keeping clips at about 2-6 s."""
    fps: float = 25.0
    """Frames per second."""
    width: int = 640
    """Frame width in pixels (the .pose files' coordinates; the .npy ones are normalised)."""
    height: int = 480
    """Frame height in pixels."""
    missing: float = 1.0
    """Scales how often trackers lose a hand or the face (0: only points out of frame)."""
    pose_file_every: int = 10
    """Write a .pose file for every n-th clip of each split (1: all, 0: none)."""
    lexicon_seed: int = 0
    """Seed of the sign lexicon (the language itself)."""
    seed: int = 0
    """Seed of sentences, signers and clips."""
    overwrite: bool = False
    """Rebuild even when the corpus exists."""


def sample_sentences(cfg: SignCorpusConfig) -> dict[str, list[Meaning]]:
    """Distinct meanings per split (test, dev, train from one stream): no gloss or English text repeats."""
    sampler = MeaningSampler(f"{cfg.seed}:sign", lengths={"short": 0.35, "medium": 0.45, "long": 0.2})
    seen: set[str] = set()
    out: dict[str, list[Meaning]] = {}
    for split in ("test", "dev", "train"):
        want, tries = int(getattr(cfg, f"{split}_sentences")), 0
        got: list[Meaning] = []
        while len(got) < want:
            tries += 1
            if tries > 50 * want + 1000:
                raise RuntimeError(f"could only draw {len(got)} distinct {split} sentences of {want}")
            m = sampler.sample()
            tokens = sentence(m)
            key, eng = gloss_string(tokens), realise(m, "eng_Latn")
            if len(tokens) > cfg.max_signs or key in seen or eng in seen:
                continue
            seen.update((key, eng))
            got.append(m)
        out[split] = got
    return out


def plan_clips(cfg: SignCorpusConfig, sentences: dict[str, list[Meaning]]) -> dict[str, list[tuple[int, Meaning, str]]]:
    """Per split, (sentence number, meaning, signer id) for every clip."""
    people = [s.id for s in signers(cfg.signers, cfg.seed)]
    train_ids, held_ids = people[: cfg.signers - cfg.heldout_signers], people[cfg.signers - cfg.heldout_signers:]
    rng = random.Random(f"{cfg.seed}:sign:plan")
    number = {"test": 0, "dev": cfg.test_sentences, "train": cfg.test_sentences + cfg.dev_sentences}
    plan: dict[str, list[tuple[int, Meaning, str]]] = {s: [] for s in SPLITS}
    n_train = max(1, len(sentences["train"]))
    for i, m in enumerate(sentences["train"]):
        k = cfg.train_clips // n_train + (i < cfg.train_clips % n_train)
        plan["train"] += [(number["train"] + i, m, who) for who in rng.sample(train_ids, min(k, len(train_ids)))]
    for split in ("dev", "test"):
        for i, m in enumerate(sentences[split]):
            who = rng.sample(held_ids, min(cfg.eval_signers_per_sentence, len(held_ids)))
            plan[split] += [(number[split] + i, m, w) for w in who]
    plan["test_seen_signer"] = [(number["test"] + i, m, rng.choice(train_ids))
                                for i, m in enumerate(sentences["test"])]
    return plan


def _check(cfg: SignCorpusConfig) -> None:
    unknown = sorted(set(cfg.langs) - set(REALISERS))
    if unknown:
        raise KeyError(f"corpus.langs: no grammar realiser for {unknown}; known: {', '.join(REALISERS)}")
    if len(cfg.langs) < 6:
        raise ValueError(f"corpus.langs: at least 6 translation languages, got {len(cfg.langs)}")
    if not 0 < cfg.heldout_signers < cfg.signers:
        raise ValueError(f"corpus.heldout_signers must be 1..{cfg.signers - 1}, got {cfg.heldout_signers}")


def render_clip(meaning: Meaning, signer: Signer, clip_id: str, cfg: SignCorpusConfig) -> tuple[np.ndarray, np.ndarray]:
    """The keypoints [T, 543, 3] and confidences [T, 543] of one clip (the same id gives the same clip)."""
    rng = np.random.default_rng([cfg.seed, zlib.crc32(clip_id.encode())])
    tracks = articulate(sentence(meaning), lexicon(cfg.lexicon_seed), signer, rng, cfg.fps)
    return track(body_points(tracks, signer, rng), signer, rng, cfg.width, cfg.height, cfg.missing)


def _resume_or_clear(root: Path, config: dict[str, Any], overwrite: bool) -> None:
    """Keep the clips made with the same config (a killed build resumes); clear those of another config."""
    stamp = root / STAMP
    config = {k: v for k, v in config.items() if k != "overwrite"}
    if not overwrite and stamp.exists() and json.loads(stamp.read_text(encoding="utf-8")) == config:
        return
    for sub in ("poses", "pose"):
        shutil.rmtree(root / sub, ignore_errors=True)
    with atomic_open(stamp, "w", encoding="utf-8") as f:
        json.dump(config, f)


@CORPUS_BUILDERS.register("sign")
def build_sign_corpus(cfg: SignCorpusConfig) -> dict[str, Any]:
    """Write the corpus (skipped when it exists with the same config) and return its statistics."""
    root = Path(cfg.out_dir)
    stats_path = root / "corpus.json"
    existing = existing_corpus(stats_path, asdict(cfg), cfg.overwrite)
    if existing is not None:
        return existing
    _check(cfg)
    stats_path.unlink(missing_ok=True)  # a half-rebuilt corpus must not look finished
    _resume_or_clear(root, asdict(cfg), cfg.overwrite)
    t0 = time.perf_counter()
    people = {s.id: s for s in signers(cfg.signers, cfg.seed)}
    plan = plan_clips(cfg, sample_sentences(cfg))
    texts: dict[str, dict[str, str]] = {}
    stats: dict[str, Any] = {"config": asdict(cfg), "langs": list(cfg.langs), "splits": {}}
    for split, clips in plan.items():
        rows, frames, lost = [], [], []
        for k, (number, meaning, who) in enumerate(clips):
            cid, sid = f"{split}-{k:06d}", f"sent{number:05d}"
            row: dict[str, Any] = {"id": cid, "pose": f"poses/{cid}.npy", "fps": cfg.fps}
            if cfg.pose_file_every and k % cfg.pose_file_every == 0:
                row["pose_file"] = f"pose/{cid}.pose"
            if not (root / row["pose"]).exists() or ("pose_file" in row and not (root / row["pose_file"]).exists()):
                xyz, conf = render_clip(meaning, people[who], cid, cfg)
                if "pose_file" in row:
                    write_pose(root / row["pose_file"], xyz, conf, cfg.fps, cfg.width, cfg.height)
                write_npy(root / row["pose"], xyz, conf)
            arr = np.load(root / row["pose"], mmap_mode="r")
            frames.append(arr.shape[0])
            lost.append(float((arr[::5, :, 3] == 0).mean()))
            if sid not in texts:
                texts[sid] = {lang: realise(meaning, lang) for lang in cfg.langs}
            row.update(frames=arr.shape[0], signer=who, gloss=gloss_string(sentence(meaning)), texts=texts[sid],
                       sentence_id=sid, split=split)
            rows.append(row)
            if (k + 1) % 500 == 0:
                log.info("sign corpus: %s %d/%d clips", split, k + 1, len(clips))
        write_jsonl(root / f"{split}.jsonl", rows)
        stats["splits"][split] = {
            "clips": len(rows), "sentences": len({r["sentence_id"] for r in rows}),
            "signers": sorted({r["signer"] for r in rows}), "pose_files": sum("pose_file" in r for r in rows),
            "seconds_mean": round(float(np.mean(frames)) / cfg.fps, 2) if frames else 0.0,
            "seconds_max": round(float(np.max(frames)) / cfg.fps, 2) if frames else 0.0,
            "missing_points": round(float(np.mean(lost)), 4) if lost else 0.0}
        log.info("sign corpus: %s written (%d clips)", split, len(rows))
    stats.update(fps=cfg.fps, width=cfg.width, height=cfg.height, layout="mediapipe_holistic_543",
                 signers={s.id: s.to_json() for s in people.values()},
                 lexicon={g: asdict(s) for g, s in lexicon(cfg.lexicon_seed).items()},
                 build_seconds=round(time.perf_counter() - t0, 1))
    with atomic_open(stats_path, "w", encoding="utf-8") as f:
        json.dump(stats, f, indent=1, ensure_ascii=False)
    return stats
