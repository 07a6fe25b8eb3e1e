"""A tiny music corpus in ``corpus=music``'s layout for the CLaMP 3 tests: ABC tunes whose genre (meter), key and
mode vary, rendered with abc2midi (and fluidsynth when asked), described in six languages."""

from __future__ import annotations

import json
import random
import shutil
import subprocess
from pathlib import Path
from typing import Any

SOUNDFONT = "/usr/share/sounds/sf2/TimGM6mb.sf2"
GENRES = {"jig": ("6/8", 6), "reel": ("4/4", 8), "waltz": ("3/4", 6), "march": ("2/4", 4)}
"""Genre -> meter and eighth notes per bar (L:1/8)."""
KEYS = ["C", "D", "G", "A", "F", "E"]
MODES = ["major", "minor"]
WORDS = {
    "eng_Latn": ({"jig": "jig", "reel": "reel", "waltz": "waltz", "march": "march"}, ("major", "minor"),
                 "A {genre} in {key} {mode}."),
    "deu_Latn": ({"jig": "Jig", "reel": "Reel", "waltz": "Walzer", "march": "Marsch"}, ("Dur", "Moll"),
                 "Ein {genre} in {key}-{mode}."),
    "fra_Latn": ({"jig": "gigue", "reel": "reel", "waltz": "valse", "march": "marche"}, ("majeur", "mineur"),
                 "Une {genre} en {key} {mode}."),
    "spa_Latn": ({"jig": "giga", "reel": "reel", "waltz": "vals", "march": "marcha"}, ("mayor", "menor"),
                 "Una {genre} en {key} {mode}."),
    "rus_Cyrl": ({"jig": "джига", "reel": "рил", "waltz": "вальс", "march": "марш"}, ("мажор", "минор"),
                 "{genre} в тональности {key} {mode}."),
    "cmn_Hans": ({"jig": "吉格舞曲", "reel": "里尔舞曲", "waltz": "华尔兹", "march": "进行曲"}, ("大调", "小调"),
                 "{key}{mode}的{genre}。"),
}
LANGS = sorted(WORDS)
SCALE = "CDEFGABcdefgab"


def tune(n: int, genre: str, key: str, mode: str, rng: random.Random) -> str:
    """An 4-bar ABC tune that starts and ends on the tonic, stepping through the key's scale."""
    meter, per_bar = GENRES[genre]
    tonic = key  # the K: field carries the mode; the melody circles the key's letter
    pos = SCALE.index(tonic)
    bars = []
    for b in range(4):
        notes = []
        for i in range(per_bar):
            if b == 3 and i == per_bar - 1:
                pos = SCALE.index(tonic)
            notes.append(SCALE[pos])
            pos = min(max(pos + rng.choice([-2, -1, 1, 2]), 0), len(SCALE) - 1)
        bars.append("".join(notes))
    k = key + ("m" if mode == "minor" else "")
    return f"X:{n}\nT:Tune {n}\nM:{meter}\nL:1/8\nQ:1/4=120\nK:{k}\n|" + "|".join(bars) + "|]\n"


def description(lang: str, genre: str, key: str, mode: str) -> str:
    genres, modes, template = WORDS[lang]
    return template.format(genre=genres[genre], key=key, mode=modes[MODES.index(mode)])


def render(abc: Path, midi: Path, wav: Path | None) -> None:
    subprocess.run(["abc2midi", str(abc), "-o", str(midi), "-silent"], check=True, capture_output=True)
    if wav is not None:
        subprocess.run(["fluidsynth", "-ni", "-g", "0.8", "-F", str(wav), "-r", "16000", SOUNDFONT, str(midi)],
                       check=True, capture_output=True)


def write_music_corpus(root: Path, n_train: int = 48, n_test: int = 16, audio: bool = False,
                       seed: int = 0) -> Path:
    """``root`` with abc/, midi/, (audio/,) train/dev/test.jsonl and corpus.json; test tunes are never trained on."""
    rng = random.Random(seed)
    for sub in ("abc", "midi", "audio"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    combos = [(g, k, m) for g in GENRES for k in KEYS for m in MODES]
    rows: list[dict[str, Any]] = []
    for n in range(n_train + n_test):
        genre, key, mode = combos[rng.randrange(len(combos))]
        tid = f"t{n:03d}"
        (root / "abc" / f"{tid}.abc").write_text(tune(n, genre, key, mode, rng), encoding="utf-8")
        wav = root / "audio" / f"{tid}.wav" if audio else None
        render(root / "abc" / f"{tid}.abc", root / "midi" / f"{tid}.mid", wav)
        row = {"id": tid, "abc": f"abc/{tid}.abc", "midi": f"midi/{tid}.mid",
               "attributes": {"key": key, "mode": mode, "meter": GENRES[genre][0], "tempo": 120, "genre": genre,
                              "instrument": "Acoustic Grand Piano", "contour": "arch", "register": "mid",
                              "dynamics": "mf"},
               "texts": {lang: description(lang, genre, key, mode) for lang in LANGS}}
        if audio:
            row["audio"] = f"audio/{tid}.wav"
        rows.append(row)
    splits = {"train": rows[:n_train], "dev": rows[n_train:], "test": rows[n_train:]}
    for name, part in splits.items():
        (root / f"{name}.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in part),
                                            encoding="utf-8")
    (root / "corpus.json").write_text(json.dumps({"counts": {k: len(v) for k, v in splits.items()},
                                                  "languages": LANGS}), encoding="utf-8")
    return root


def have_renderers(audio: bool = False) -> bool:
    return shutil.which("abc2midi") is not None and (not audio or (shutil.which("fluidsynth") is not None
                                                                    and Path(SOUNDFONT).is_file()))


def tiny_overrides(root: Path, init_dir: Path | None = None) -> list[str]:
    """Hydra overrides pointing ``data=music`` at a tiny corpus (and the audio stage at a tiny symbolic model)."""
    init = [f"model.init_encoder={init_dir}"] if init_dir else []
    return [f"data.train_manifest={root}/train.jsonl", f"data.val_manifest={root}/dev.jsonl",
            f"data.test_manifest={root}/test.jsonl", "data.extra_test={}", "data.extra_train=[]", "data.batch_size=8",
            "model.vocab_size=300", "model.audio_cache=null", *init]


def write_tiny_model(out: Path, corpus: Path) -> Path:
    """An untrained CLaMP 3 directory (``TINY_NET`` at width 64, just over 1e5 parameters: the size test_configs
    expects of a real model config) with a tokenizer of the corpus's descriptions."""
    from common import hub
    from music.clamp.config import clamp3_tiny
    from music.clamp.model import MODEL_TYPE, ClampModel
    from music.clamp.module import description_texts
    from text.tokenizer import SentencePieceTokenizer

    texts = description_texts(str(corpus / "train.jsonl"))
    tok = SentencePieceTokenizer.train(texts, out / "tok" / "tokenizer.model", 300)
    wide = {k: 64 for k in TINY_NET if k.endswith("d_model") or k == "text_embed_dim"}
    net = ClampModel(clamp3_tiny(**{**TINY_NET, **wide, "text_vocab_size": len(tok)}))
    return hub.save_pretrained(net, out / "model", model_type=MODEL_TYPE, files={"tokenizer": tok})


TINY_NET = {"sym_patch_size": 16, "sym_char_dim": 8, "sym_d_model": 32, "sym_num_layers": 1, "sym_num_heads": 2,
            "sym_ffn_dim": 64, "sym_max_patches": 48, "audio_d_model": 32, "audio_num_layers": 1,
            "audio_num_heads": 2, "audio_ffn_dim": 64, "audio_n_mels": 32, "audio_max_segments": 32,
            "text_d_model": 32, "text_num_layers": 1, "text_num_heads": 2, "text_ffn_dim": 64, "text_embed_dim": 32,
            "text_max_length": 32}
"""``clamp3_tiny`` overrides for tests."""
