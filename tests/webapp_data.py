"""Tiny random-weight models for the web app's tests, saved through the hub as a user's models folder would hold
them: a CTC recogniser with a language-ID head, a TTS bundle, and a FLAME retrieval index over a few images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from PIL import Image

from common.retrieval.folder import index_folder
from speech.asr.config import CTCModelConfig, conformer
from speech.asr.hub import save_pretrained as save_ctc
from speech.asr.lid import LIDConfig, LIDHead, save_lid
from speech.asr.model import CTCModel
from tests.flame_llm import write_tiny_llm
from tests.test_tts_synth import voice, write_model
from text.char_vocab import CharVocab
from vision.flame.config import flame_tiny
from vision.flame.hub import save_pretrained as save_flame
from vision.flame.model import FlameModel

SR = 16_000
ASR_LANGS = {"eng_Latn": "abcdefghij", "deu_Latn": "abcdefg"}
COLOURS = {"red": (220, 30, 30), "green": (30, 200, 60), "blue": (30, 60, 220), "yellow": (230, 220, 40)}


def write_asr(out: Path) -> Path:
    """A tiny conformer CTC model whose head never picks blank, so even random weights write words, plus a LID head
    over its two languages."""
    torch.manual_seed(0)
    vocab = CharVocab(list("abcdefghij"), ASR_LANGS)
    model = CTCModel(CTCModelConfig(vocab_size=len(vocab),
                                    encoder=conformer(d_model=32, num_layers=1, num_heads=2, conv_kernel=5)))
    with torch.no_grad():
        model.head.bias[:2] = -8.0  # blank and unknown: the greedy path always writes a character
        model.head.bias[2] = 0.6  # space often enough for several words
    save_ctc(model, vocab, out, langs=sorted(ASR_LANGS))
    save_lid(LIDHead(LIDConfig(d_model=32, langs=sorted(ASR_LANGS), attn_dim=8, hidden=16)), out)
    return out


def write_flame_index(root: Path) -> tuple[Path, Path, Path]:
    """A tiny FLAME (random ViT and LLM) and its index over four coloured squares and a text file:
    (model dir, index dir, media folder)."""
    media = root / "media"
    media.mkdir(parents=True, exist_ok=True)
    for name, rgb in COLOURS.items():
        img = np.zeros((32, 32, 3), np.uint8)
        img[:] = rgb
        img[8:24, 8:24] = 255 - np.asarray(rgb, np.uint8)  # a square in the middle, so images differ in shape too
        Image.fromarray(img).save(media / f"{name}.png")
    (media / "notes.txt").write_text("a red square on black\nfour colourful tiles\n", encoding="utf-8")
    llm = write_tiny_llm(root / "llm")
    torch.manual_seed(0)
    model = FlameModel(flame_tiny(embed_dim=32, llm_dir=str(llm), image_size=32, patch_size=8, depth=1, width=32,
                                  heads=2, projector_hidden=32))
    flame = save_flame(model, root / "models" / "flame")
    index = root / "models" / "photos_index"
    index_folder(media, index, flame, progress=False)
    return flame, index, media


def write_models(root: Path) -> tuple[Path, Path]:
    """A models folder with one of each (asr/, tts/, flame/, photos_index/): (models folder, media folder)."""
    write_asr(root / "models" / "asr")
    write_model(root / "models" / "tts")
    _, _, media = write_flame_index(root)
    return root / "models", media


def write_inputs(out: Path) -> dict[str, Path]:
    """Files a person would upload: speech, a voice prompt, and broken ones of each kind."""
    out.mkdir(parents=True, exist_ok=True)
    files = {"speech": out / "speech.wav", "prompt": out / "prompt.wav", "short": out / "short.wav",
             "corrupt": out / "corrupt.wav", "wrong": out / "table.csv", "broken_png": out / "broken.png"}
    sf.write(files["speech"], voice(1.5, f0=120.0, seed=1), SR)
    sf.write(files["prompt"], voice(1.6), SR)
    sf.write(files["short"], voice(0.3), SR)
    files["corrupt"].write_bytes(b"RIFF\x00\x00\x00\x00WAVEfmt " + bytes(range(256)) * 4)
    files["wrong"].write_text("a,b\n1,2\n", encoding="utf-8")
    files["broken_png"].write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    return files
