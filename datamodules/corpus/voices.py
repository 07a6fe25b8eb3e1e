"""Synthetic voices for the speech corpus: voice qualities (espeak-ng variants, flite, festival) and sox effects.

A voice quality is a family of voices that sound alike (whispered, creaky, klatt-style, formant-shifted...). A speaker
is one voice of a quality with its own pitch, range, rate and effect settings, fixed by the seed. Held-out qualities
render only the out-of-domain test split.
"""

from __future__ import annotations

import glob
import hashlib
import io
import os
import random
import re
import shutil
import subprocess
import tempfile
import unicodedata
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
import soxr

from speech.audio import SAMPLE_RATE

_MODAL = ("m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8", "f1", "f2", "f3", "f4", "f5", "Andy", "Annie", "Denis",
          "Hugo", "edward", "steph", "anika", "Diogo", "iven", "belinda", "david", "linda", "max", "paul")


@dataclass(frozen=True)
class EngineVoice:
    """A festival or flite voice: its language, kind and the text encoding it reads."""

    lang: str
    method: str
    encoding: str = "utf-8"


FESTIVAL_VOICES: dict[str, EngineVoice] = {
    "kal_diphone": EngineVoice("eng_Latn", "diphone"),
    "ked_diphone": EngineVoice("eng_Latn", "diphone"),
    "cmu_us_slt_arctic_hts": EngineVoice("eng_Latn", "hts"),
    "lp_diphone": EngineVoice("ita_Latn", "diphone", "latin-1"),
    "pc_diphone": EngineVoice("ita_Latn", "diphone", "latin-1"),
    "msu_ru_nsh_clunits": EngineVoice("rus_Cyrl", "clunits"),
    "hindi_NSK_diphone": EngineVoice("hin_Deva", "diphone"),
    "czech_dita": EngineVoice("ces_Latn", "diphone", "latin-2"),
    "czech_krb": EngineVoice("ces_Latn", "diphone", "latin-2"),
    "czech_machac": EngineVoice("ces_Latn", "diphone", "latin-2"),
    "czech_ph": EngineVoice("ces_Latn", "diphone", "latin-2"),
    "suo_fi_lj_diphone": EngineVoice("fin_Latn", "diphone", "latin-1"),
    "hy_fi_mv_diphone": EngineVoice("fin_Latn", "diphone", "latin-1"),
    "upc_ca_ona_hts": EngineVoice("cat_Latn", "hts", "latin-1"),
}
"""Debian's festival voices (festvox-* packages: scripts/setup.sh installs the Italian and Hindi ones for the speech
corpus, and the rest with the ``trace`` extra)."""


def festival_installed(voice: str) -> bool:
    return bool(glob.glob(f"/usr/share/festival/voices/*/{voice}"))


def festival_voices(lang: str, installed: bool = True) -> list[str]:
    """festival's diphone voices of ``lang`` (concatenated recordings of one real speaker each): the installed ones,
    or with ``installed=False`` every one that Debian packages."""
    return [v for v, ev in FESTIVAL_VOICES.items() if ev.lang == lang and ev.method == "diphone"
            and (not installed or festival_installed(v))]


def festival_text(text: str, encoding: str) -> bytes:
    """``text`` as a festival voice reads it: letters, marks, digits and plain punctuation, in the voice's encoding
    (the old voices read 8 bits: Italian and Finnish Latin-1, Czech Latin-2), without the letters it lacks. Other
    signs become spaces: a guillemet, which Latin-1 has, stops the Italian letter-to-sound rules."""
    kept = "".join(c if unicodedata.category(c)[0] in "LMN" or c in " .,;:!?'-" else " " for c in text)
    return kept.encode(encoding, errors="ignore")


def _festival_pcm(voice: str, text: str) -> bytes:
    """16-bit 16 kHz samples of ``text`` in festival's ``voice`` (text2wave leaves a piped RIFF header's size at 0)."""
    proc = subprocess.run(["text2wave", "-eval", f"(voice_{voice})", "-otype", "raw", "-F", str(SAMPLE_RATE),
                           "-o", "/dev/stdout"], input=festival_text(text, FESTIVAL_VOICES[voice].encoding),
                          capture_output=True, timeout=120)
    if proc.returncode != 0 or len(proc.stdout) < 100:
        raise RuntimeError(f"festival voice {voice} failed: {proc.stderr.decode(errors='replace')[-300:]}")
    return proc.stdout[: len(proc.stdout) // 2 * 2]


def festival_wave(voice: str, text: str) -> np.ndarray:
    """``text`` in festival's ``voice``: 16 kHz mono float32."""
    return np.frombuffer(_festival_pcm(voice, text), dtype="<i2").astype(np.float32) / 32768.0


@dataclass(frozen=True)
class Quality:
    """A family of voices with one way of sounding."""

    variants: tuple[str, ...]
    """espeak-ng variants (``+name``), or the engine's own voice names."""
    effect: str = ""
    """Post-processing: ``formant`` (vocal-tract length), ``pitch`` (sox pitch, formants kept), ``band`` (telephone
    band and overdrive), ``breathy`` (envelope-shaped aspiration noise), ``variant`` (a new espeak-ng variant drawn
    per speaker, see ``random_variant``) or nothing."""
    engine: str = "espeak-ng"
    """``espeak-ng``, ``flite`` or ``festival``."""
    langs: tuple[str, ...] = ()
    """Languages the engine speaks (empty: every espeak-ng language)."""
    extreme: bool = False
    """Rates and pitches outside the training ranges."""


QUALITIES: dict[str, Quality] = {
    "modal": Quality(_MODAL),
    "creaky": Quality(("croak", "grandpa", "grandma")),
    "klatt": Quality(("klatt", "klatt2", "klatt3")),
    "klatt_hi": Quality(("klatt4", "klatt5", "klatt6")),
    "whisper": Quality(("whisper", "whisperf")),
    "breathy": Quality(_MODAL, effect="breathy"),
    "formant": Quality(_MODAL, effect="formant"),
    "pitch": Quality(_MODAL, effect="pitch"),
    "band": Quality(_MODAL, effect="band"),
    "extreme_prosody": Quality(_MODAL, extreme=True),
    # A new espeak-ng voice per speaker: vocal-tract length, formant levels and widths, flutter, roughness, synthesiser
    # and, for half of them, aspiration under partial voicing (down to a whisper: SpeechCorpusConfig.varied_voicing).
    "varied": Quality(("",), effect="variant"),
    # festival's diphone voices of a language (recordings of one real speaker each), made into several speakers by
    # pitch, vocal-tract and tempo changes (recorded_speaker); the speech corpus's recorded_share.
    "recorded": Quality(tuple(FESTIVAL_VOICES), engine="festival", effect="recorded"),
    # flite and festival speak English only (flite -lv: kal awb rms slt; festival: kal_diphone).
    "flite": Quality(("kal", "awb", "rms", "slt", "kal16"), engine="flite", langs=("eng_Latn",)),
    "festival": Quality(("kal_diphone",), engine="festival", langs=("eng_Latn",)),
}
"""Every voice quality the builder knows."""


@dataclass
class Speaker:
    """One synthetic speaker: a voice of a quality and its prosody and effect settings."""

    name: str
    quality: str
    variant: str
    pitch: int
    range_: int
    rate: int
    sox: list[str] = field(default_factory=list)
    """sox effect arguments applied after synthesis."""
    breath: float = 0.0
    """Aspiration noise level relative to the speech envelope (breathy voices)."""
    variant_def: str = ""
    """An espeak-ng variant file's text (``varied`` voices), written to a private voice folder when rendered."""


def available(quality: str, lang: str) -> bool:
    """True when the quality's engine is installed and speaks ``lang``."""
    q = QUALITIES[quality]
    return (not q.langs or lang in q.langs) and shutil.which(q.engine) is not None


VARIED_VOICING = (5, 60)
"""Voicing range (percent) of the breathing ``varied`` voices by default (the breath grows below 45: a whisper)."""
SPEAKER_RATE = (140, 185)
"""Speaking rate range (words a minute) of the training, dev and test speakers."""
SPEAKER_PITCH = (25, 75)
"""espeak-ng pitch range (0-99) of the training, dev and test speakers."""
VARIED_PITCH = (0, 99)
"""espeak-ng pitch range of the ``varied`` training voices by default: the whole scale, the lowest and highest
voices included (docs/asr.md, 2026-12-07 evening)."""


def make_speaker(name: str, quality: str, rng: random.Random, voicing: tuple[int, int] = VARIED_VOICING,
                 rate: tuple[int, int] = SPEAKER_RATE, pitch: tuple[int, int] = SPEAKER_PITCH) -> Speaker:
    """Draw a speaker of ``quality``: training speakers keep a pitch in ``pitch`` (espeak-ng's 0-99) and a rate in
    ``rate`` (words a minute); extreme ones leave both. ``voicing`` is the range (percent) a breathing ``varied``
    voice draws its voicing from (``random_variant``)."""
    q = QUALITIES[quality]
    if q.effect == "recorded":
        raise ValueError("recorded voices speak only the languages festival has voices for: they come from "
                         "corpus.recorded_share, not corpus.qualities")
    variant = rng.choice(q.variants)
    level, wpm = rng.randint(*pitch), rng.randint(*rate)
    if q.extreme:
        level = rng.choice([rng.randint(0, 15), rng.randint(85, 99)])
        wpm = rng.choice([rng.randint(95, 115), rng.randint(215, 250)])
    sp = Speaker(name, quality, variant, level, rng.randint(30, 90), wpm)
    if q.effect == "formant":
        # speed scales pitch and formants together (a shorter or longer vocal tract); tempo restores the duration.
        f = rng.choice([rng.uniform(0.86, 0.94), rng.uniform(1.06, 1.16)])
        sp.sox = ["speed", f"{f:.3f}", "tempo", "-s", f"{1 / f:.3f}"]
    elif q.effect == "pitch":
        sp.sox = ["pitch", str(rng.choice([-1, 1]) * rng.randint(200, 500))]
    elif q.effect == "band":
        lo, hi = rng.randint(250, 400), rng.randint(3000, 4200)
        sp.sox = ["highpass", str(lo), "lowpass", str(hi), "overdrive", str(rng.randint(3, 12))]
    elif q.effect == "breathy":
        sp.breath = rng.uniform(0.15, 0.35)
    elif q.effect == "variant":
        sp.variant_def = random_variant(rng, voicing)
        sp.variant = "v" + hashlib.blake2s(sp.variant_def.encode(), digest_size=4).hexdigest()
    return sp


def recorded_speaker(name: str, voice: str, rng: random.Random) -> Speaker:
    """A speaker of festival's diphone ``voice``: its own pitch shift (sox, -300 to +300 cents, formants kept),
    vocal-tract length (0.92-1.08) and tempo (0.8-1.25), so that one recorded voice makes several speakers.
    festival keeps its own intonation and speed: ``rate`` is festival's ~170 words a minute times the tempo, and
    ``pitch`` a nominal 50."""
    shift, tract, tempo = rng.randint(-300, 300), rng.uniform(0.92, 1.08), rng.uniform(0.8, 1.25)
    sp = Speaker(name, "recorded", voice, 50, 50, round(170 * tempo))
    # speed scales pitch, formants and duration by the tract factor; tempo then sets the duration to 1 / tempo.
    sp.sox = ["pitch", str(shift), "speed", f"{tract:.3f}", "tempo", "-s", f"{tempo / tract:.3f}"]
    return sp


def random_variant(rng: random.Random, voicing: tuple[int, int] = VARIED_VOICING) -> str:
    """An espeak-ng variant file: one vocal-tract length scales formants 1-8 (each also jittered), with random formant
    heights and widths, flutter, roughness, consonant strength and synthesiser (klatt 1-3 or the default; the held-out
    klatt 4-6 never); half the voices breathe, with aspiration over formants 1-6 and voicing drawn from ``voicing``
    (percent; espeak-ng's own whisper variants, which only test_ood speaks, use 17 and 20); below 45% the breath grows
    as the voicing falls."""
    tract = rng.uniform(0.88, 1.14)
    lines = ["language variant", "name varied", f"formant 0 100 {rng.randint(70, 130)} {rng.randint(80, 160)}"]
    for k in range(1, 9):
        freq = round(100 * tract * rng.uniform(0.96, 1.04))
        lines.append(f"formant {k} {freq} {rng.randint(70, 130)} {rng.randint(80, 160)}")
    lines += [f"flutter {rng.randint(0, 30)}", f"roughness {rng.randint(0, 4)}", f"consonants {rng.randint(80, 130)}"]
    synth = rng.choice([0, 0, 1, 2, 3])
    if synth:
        lines.append(f"klatt {synth}")
    if rng.random() < 0.5:
        base = rng.randint(10, 50)
        voiced = rng.randint(*voicing)
        base += max(0, 45 - voiced)  # the less voicing, the more breath (a whisper: 17% voicing, breath 75)
        levels = [base, base, round(0.7 * base), round(0.5 * base), round(0.2 * base), round(0.15 * base)]
        lines += [f"voicing {voiced}", "breath " + " ".join(map(str, levels)),
                  "breathw 150 150 200 200 400 400"]
    return "\n".join(lines) + "\n"


def espeak_text(text: str) -> str:
    """Text safe for espeak-ng: "[[" starts inline phonemes, "<" markup; never let text act as either."""
    return text.replace("[", " ").replace("]", " ").replace("<", " ").replace(">", " ")


@cache
def _espeak_data() -> Path:
    """The system's espeak-ng data folder, as ``espeak-ng --version`` names it."""
    info = subprocess.run(["espeak-ng", "--version"], capture_output=True, text=True).stdout
    found = re.search(r"Data at:\s*(\S.*)$", info.strip())
    if not found:
        raise RuntimeError(f"cannot find espeak-ng's data folder in its --version output: {info.strip()!r}")
    return Path(found.group(1).strip())


def _variant_path(sp: Speaker) -> Path:
    """A private folder for ``espeak-ng --path`` that speaks ``sp``'s variant: links to the system's data, and a
    voices/!v holding that one variant file (espeak-ng lists at most 349 voices, so not every variant in one folder).
    Made once, atomically, and shared by the build's workers."""
    system = _espeak_data()
    tag = hashlib.blake2s(str(system).encode(), digest_size=4).hexdigest()
    root = Path(tempfile.gettempdir()) / f"polyglot-espeak-{os.getuid()}-{tag}" / sp.variant
    if (root / "espeak-ng-data" / "voices" / "!v" / sp.variant).is_file():
        return root
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=root.parent, prefix=f".{sp.variant}."))
    data = tmp / "espeak-ng-data"
    (data / "voices" / "!v").mkdir(parents=True)
    for entry in system.iterdir():
        if entry.name != "voices":
            (data / entry.name).symlink_to(entry)
    for entry in (system / "voices").iterdir():
        if entry.name != "!v":
            (data / "voices" / entry.name).symlink_to(entry)
    (data / "voices" / "!v" / sp.variant).write_text(sp.variant_def)
    try:
        tmp.rename(root)
    except OSError:  # another worker made it first
        shutil.rmtree(tmp, ignore_errors=True)
    return root


def _synthesise(sp: Speaker, espeak_voice: str, text: str, rate: int) -> bytes:
    q = QUALITIES[sp.quality]
    if q.engine == "flite":
        cmd = ["flite", "-voice", sp.variant, "--setf", f"duration_stretch={175 / rate:.3f}", "-o", "/dev/stdout"]
        proc = subprocess.run([*cmd, "-t", text], capture_output=True, timeout=120)
    elif q.engine == "festival":
        buf = io.BytesIO()
        sf.write(buf, np.frombuffer(_festival_pcm(sp.variant, text), dtype="<i2"), SAMPLE_RATE, format="WAV",
                 subtype="PCM_16")
        return buf.getvalue()
    else:
        data = [f"--path={_variant_path(sp)}"] if sp.variant_def else []
        cmd = ["espeak-ng", *data, "-v", f"{espeak_voice}+{sp.variant}", "-s", str(rate), "-p", str(sp.pitch),
               "-a", "120", "-g", "2", "--stdout"]
        proc = subprocess.run(cmd, input=espeak_text(text).encode("utf-8"), capture_output=True, timeout=120)
    if proc.returncode != 0 or len(proc.stdout) < 100:
        raise RuntimeError(f"{q.engine} failed ({sp.quality}/{sp.variant}): {proc.stderr.decode(errors='replace')}")
    return proc.stdout


def _breathe(wav: np.ndarray, level: float, seed: int) -> np.ndarray:
    # Aspiration rides on the speech envelope (it stops in pauses); differencing tilts the noise towards highs.
    env = np.convolve(np.abs(wav), np.ones(320) / 320, mode="same")
    noise = np.diff(np.random.default_rng(seed).standard_normal(len(wav) + 1)).astype(np.float32)
    out = wav * (1 - level) + level * 2.5 * env * noise
    return (out / max(1.0, float(np.abs(out).max()))).astype(np.float32)


def synthesise(sp: Speaker, espeak_voice: str, text: str, rate: int, seed: int) -> np.ndarray:
    """Render ``text`` in speaker ``sp``: 16 kHz mono float32, leading and trailing silence trimmed to 0.1 s."""
    data = _synthesise(sp, espeak_voice, text, rate)
    if sp.sox:
        proc = subprocess.run(["sox", "-t", "wav", "-", "-t", "wav", "-e", "floating-point", "-b", "32",
                               "-r", str(SAMPLE_RATE), "-", *sp.sox], input=data, capture_output=True, timeout=120)
        if proc.returncode != 0:
            raise RuntimeError(f"sox {' '.join(sp.sox)} failed: {proc.stderr.decode(errors='replace')}")
        data = proc.stdout
    wav, sr = sf.read(io.BytesIO(data), dtype="float32")
    if wav.ndim > 1:
        wav = wav.mean(axis=1)
    if sr != SAMPLE_RATE:
        wav = soxr.resample(wav, sr, SAMPLE_RATE).astype(np.float32)
    if sp.breath:
        wav = _breathe(wav, sp.breath, seed)
    nz = np.flatnonzero(np.abs(wav) > 1e-3)
    pad = int(0.1 * SAMPLE_RATE)
    return wav[max(0, nz[0] - pad) : nz[-1] + pad] if len(nz) else wav


def speaker_fields(sp: Speaker) -> dict[str, Any]:
    """What a manifest row says about its voice: who, which quality and variant, and its espeak-ng pitch (0-99) and
    rate (words a minute, before each utterance's jitter), so results can be read by pitch and speaking rate."""
    return {"speaker": sp.name, "voice_quality": sp.quality, "voice": sp.variant, "pitch": sp.pitch,
            "rate": sp.rate}
