"""SONAR-SLT test data: a tiny synthetic sign corpus in the contract's layout, and a tiny random sentence encoder.

Each gloss is a smooth wrist trajectory with a hand shape; a sentence is two or three glosses; every language has
its own word for each gloss (and German its own word order). Signers differ in body size, position and speed.
Test rows hold sentences that training never saw, signed by a signer training never saw.
"""

from __future__ import annotations

import itertools
import json
import random
from pathlib import Path

import numpy as np

N_POINTS, BODY, FACE, LH, RH = 543, 0, 33, 501, 522
GLOSSES = ["HOUSE", "WATER", "FRIEND", "GO", "EAT", "BIG", "RED", "TOMORROW"]
WORDS = {
    "eng_Latn": ["house", "water", "friend", "go", "eat", "big", "red", "tomorrow"],
    "deu_Latn": ["Haus", "Wasser", "Freund", "gehen", "essen", "gross", "rot", "morgen"],
    "fra_Latn": ["maison", "eau", "ami", "aller", "manger", "grand", "rouge", "demain"],
}


def sentence(glosses: tuple[int, ...], lang: str) -> str:
    words = [WORDS[lang][g] for g in glosses]
    return " ".join(reversed(words) if lang == "deu_Latn" else words)


def sign_clip(glosses: tuple[int, ...], signer: int, rng: np.random.Generator, frames: int = 10) -> np.ndarray:
    """``[T, 543, 4]``: a signer's body with both hands tracing each gloss's trajectory in turn."""
    srng = np.random.default_rng(100 + signer)
    scale, centre = 0.2 * (1 + 0.1 * srng.standard_normal()), np.array([0.5, 0.5]) + 0.03 * srng.standard_normal(2)
    speed = 1 + 0.15 * srng.standard_normal()
    n = max(4, int(frames / speed))
    out = []
    for g in glosses:
        grng = np.random.default_rng(g)
        a, b, c = grng.uniform(-1, 1, size=(3, 2))
        shape = grng.normal(0, 0.15, size=(21, 2))
        t = np.linspace(0, 1, n)[:, None]
        path = a * (1 - t) ** 2 + 2 * b * t * (1 - t) + c * t**2  # [n, 2], a quadratic Bezier
        for k in range(n):
            frame = np.zeros((N_POINTS, 4), np.float32)
            frame[:, 3] = 1.0
            body = np.random.default_rng(7).uniform(-1, 1, size=(33, 2))
            body[11], body[12] = (-1, 0), (1, 0)  # the shoulders, one shoulder width apart
            frame[BODY:FACE, :2] = body
            frame[FACE:LH, :2] = np.random.default_rng(8).normal([0, -1.5], 0.3, size=(468, 2))
            frame[RH:, :2] = path[k] + shape
            frame[LH:RH, :2] = path[k] * [-1, 1] + shape * [-1, 1] + [0, 0.5]
            frame[15, :2], frame[16, :2] = frame[LH, :2], frame[RH, :2]  # the body's wrists follow the hands
            frame[:, :2] = frame[:, :2] * scale + centre + rng.normal(0, 0.003, size=(N_POINTS, 2))
            frame[:, 2] = 0.0
            out.append(frame)
    return np.stack(out)


def write_sign_corpus(root: Path, n_train: int = 160, seed: int = 0, langs: tuple[str, ...] = tuple(WORDS),
                      pose_files: int = 4) -> Path:
    """``root/{poses,pose}/``, ``train/dev/test.jsonl``, ``corpus.json``; returns ``root``."""
    from vision.sign.pose_io import PoseClip, write_pose_file

    rng = np.random.default_rng(seed)
    sentences = [s for k in (2, 3) for s in itertools.permutations(range(len(GLOSSES)), k)]
    random.Random(seed).shuffle(sentences)
    held = sentences[:24]
    seen = sentences[24:]
    splits = {"train": [(seen[i % len(seen)], i % 4) for i in range(n_train)],
              "dev": [(held[i], 4) for i in range(12)], "test": [(held[12 + i], 5) for i in range(12)]}
    (root / "poses").mkdir(parents=True, exist_ok=True)
    written = 0
    for split, items in splits.items():
        rows = []
        for i, (glosses, signer) in enumerate(items):
            cid = f"{split}_{i:04d}"
            arr = sign_clip(glosses, signer, rng)
            arr[rng.random(arr.shape[:2]) < 0.02] = [np.nan, np.nan, np.nan, 0.0]  # a few points lost by the tracker
            np.save(root / "poses" / f"{cid}.npy", arr.astype(np.float32))
            row = {"id": cid, "pose": f"poses/{cid}.npy", "fps": 25, "frames": len(arr), "signer": f"s{signer}",
                   "gloss": " ".join(GLOSSES[g] for g in glosses),
                   "texts": {lang: sentence(glosses, lang) for lang in langs},
                   "sentence_id": "-".join(map(str, glosses))}
            if written < pose_files:
                write_pose_file(PoseClip(arr[..., :3], arr[..., 3]), root / "pose" / f"{cid}.pose")
                row["pose_file"] = f"pose/{cid}.pose"
                written += 1
            rows.append(row)
        (root / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    (root / "corpus.json").write_text(json.dumps({"langs": list(langs), "glosses": GLOSSES}), encoding="utf-8")
    return root


def write_tiny_encoder(out: Path, corpus: Path, embed_dim: int = 32) -> Path:
    """A random tiny sentence encoder (tokenizer trained on the corpus texts); mean pooling keeps it compositional."""
    import torch

    from text.sentence_encoder import SentenceEncoder, SentenceEncoderConfig, save_pretrained
    from text.tokenizer import SentencePieceTokenizer

    texts = [t for split in ("train", "dev", "test") for line in (corpus / f"{split}.jsonl").read_text().splitlines()
             for t in json.loads(line)["texts"].values()]
    out.mkdir(parents=True, exist_ok=True)
    tok = SentencePieceTokenizer.train(texts, out / "tok_src.model", vocab_size=300)
    torch.manual_seed(0)
    cfg = SentenceEncoderConfig(vocab_size=len(tok), d_model=32, num_layers=1, num_heads=2, ffn_dim=64,
                                embed_dim=embed_dim, dropout=0.0)
    save_pretrained(SentenceEncoder(cfg), tok, out / "encoder")
    return out / "encoder"


def tiny_sign_overrides(corpus: Path, encoder: Path) -> list[str]:
    """Train-config overrides for the tiny corpus (tests/test_configs.py)."""
    return [f"data.train_manifest={corpus}/train.jsonl", f"data.val_manifest={corpus}/dev.jsonl",
            f"data.test_manifest={corpus}/test.jsonl", f"data.text_encoder={encoder}",
            f"data.embedding_cache={corpus}/cache/emb", f"data.tokenizer_path={corpus}/cache/tokenizer.model",
            "data.vocab_size=200", "data.num_workers=0", "data.batch_size=8", "data.ae_batch_size=16", "logger=csv",
            "callbacks.progress_bar=null", "trainer.enable_progress_bar=false", "trainer.accelerator=cpu",
            "trainer.precision=32-true"]
