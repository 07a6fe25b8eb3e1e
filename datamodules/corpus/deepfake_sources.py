"""Generators of the deepfake corpus: which systems exist, their architecture family, voices and languages.

A source is one generator system (the label to trace); its voices are the speakers. espeak-ng, festival and flite
render text directly (through ``datamodules.corpus.voices`` for espeak-ng and flite); the resynthesis sources
re-vocode speech of those engines; the suite's TTS runs as a subprocess (``deepfake_tts.py``).
"""

from __future__ import annotations

import glob
import shutil
import subprocess
from dataclasses import dataclass

import numpy as np

from datamodules.corpus.languages import LANGUAGES
from datamodules.corpus.voices import Speaker, synthesise
from speech.audio import SAMPLE_RATE


@dataclass(frozen=True)
class Source:
    """One generator system."""

    family: str
    """Architecture family: ``formant``, ``diphone``, ``unit_selection``, ``statistical_parametric``,
    ``vocoder_resynthesis`` or ``flow_matching``."""
    engine: str
    """``espeak-ng``, ``festival``, ``flite``, ``world``, ``griffinlim`` or ``suite_tts``."""
    method: str = ""
    """festival/flite voice kind this source takes (``diphone``, ``clunits``, ``hts``, ``clustergen``)."""


SOURCES: dict[str, Source] = {
    "espeak_ng": Source("formant", "espeak-ng"),
    "festival_diphone": Source("diphone", "festival", "diphone"),
    "festival_clunits": Source("unit_selection", "festival", "clunits"),
    "festival_hts": Source("statistical_parametric", "festival", "hts"),
    "flite_diphone": Source("diphone", "flite", "diphone"),
    "flite_clustergen": Source("statistical_parametric", "flite", "clustergen"),
    "world_resynth": Source("vocoder_resynthesis", "world"),
    "griffinlim_resynth": Source("vocoder_resynthesis", "griffinlim"),
    "suite_tts_vocos": Source("flow_matching", "suite_tts"),
    "suite_tts_gl": Source("flow_matching", "suite_tts"),
}
"""Every source the builder knows, by the name the corpus labels it with."""


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
"""Debian's festival voices (festvox-* packages; scripts/setup.sh installs them with the ``trace`` extra)."""

FLITE_VOICES: dict[str, EngineVoice] = {
    "kal": EngineVoice("eng_Latn", "diphone"), "kal16": EngineVoice("eng_Latn", "diphone"),
    "awb": EngineVoice("eng_Latn", "clustergen"), "rms": EngineVoice("eng_Latn", "clustergen"),
    "slt": EngineVoice("eng_Latn", "clustergen"),
}
"""flite's built-in voices: kal/kal16 are diphone voices, awb/rms/slt clustergen (statistical parametric)."""

ESPEAK_VARIANTS = ("m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "klatt", "klatt2", "croak")
"""espeak-ng voice variants used as its speakers (the same variant is the same speaker in every language)."""

EXTRA_ESPEAK = {"ces_Latn": "cs", "fin_Latn": "fi", "cat_Latn": "ca"}
"""espeak-ng voices of festival languages that the suite's text corpora don't cover (text from ``text_files``)."""


def espeak_code(lang: str) -> str:
    if lang in LANGUAGES:
        return LANGUAGES[lang].espeak
    if lang in EXTRA_ESPEAK:
        return EXTRA_ESPEAK[lang]
    raise KeyError(f"language {lang!r} has no espeak-ng voice here; known: {sorted({*LANGUAGES, *EXTRA_ESPEAK})}")


def festival_installed(voice: str) -> bool:
    return bool(glob.glob(f"/usr/share/festival/voices/*/{voice}"))


def text_voices(source: str, lang: str) -> list[str]:
    """Voices of a text-to-speech source that speak ``lang`` (engine-prefixed speaker names)."""
    src = SOURCES[source]
    if src.engine == "espeak-ng":
        return [f"espeak:{v}" for v in ESPEAK_VARIANTS]
    if src.engine == "festival":
        return [f"festival:{v}" for v, ev in FESTIVAL_VOICES.items()
                if ev.lang == lang and ev.method == src.method and festival_installed(v)]
    if src.engine == "flite":
        return [f"flite:{v}" for v, ev in FLITE_VOICES.items() if ev.lang == lang and ev.method == src.method]
    return []


def resynthesis_inputs(lang: str) -> list[str]:
    """Voices whose speech the resynthesis sources re-vocode: every espeak-ng variant and the festival/flite ones."""
    out = text_voices("espeak_ng", lang)
    for name in ("festival_diphone", "festival_clunits", "festival_hts", "flite_diphone"):
        out += text_voices(name, lang)
    return out


def missing_tool(source: str) -> str | None:
    """Why ``source`` can't run here (a missing program or module), or None."""
    engine = SOURCES[source].engine
    need = {"espeak-ng": ["espeak-ng"], "festival": ["text2wave"], "flite": ["flite"], "world": ["espeak-ng"],
            "griffinlim": ["espeak-ng"]}.get(engine, [])
    for tool in need:
        if shutil.which(tool) is None:
            return f"{tool} is not installed (apt-get install {'festival' if tool == 'text2wave' else tool})"
    if engine == "world":
        try:
            import pyworld  # noqa: F401
        except ImportError:
            return "pyworld is not installed (pip install -e '.[trace]')"
    return None


@dataclass(frozen=True)
class Prosody:
    """Per-clip speaking settings (espeak-ng and flite honour them; festival keeps its own)."""

    rate: int = 170
    """Words per minute."""
    pitch: int = 50
    """espeak-ng base pitch 0-99."""
    range_: int = 50
    """espeak-ng pitch range 0-99."""


def render_text(speaker: str, lang: str, text: str, prosody: Prosody, seed: int) -> np.ndarray:
    """``text`` spoken by ``speaker`` (``espeak:m3``, ``festival:kal_diphone``, ``flite:rms``): 16 kHz float32."""
    engine, _, voice = speaker.partition(":")
    if engine == "festival":
        return _festival(voice, text)
    quality = {"espeak": "modal", "flite": "flite"}.get(engine)
    if quality is None:
        raise ValueError(f"{speaker}: not a text-to-speech voice (espeak:, festival: or flite:)")
    sp = Speaker(speaker, quality, voice, prosody.pitch, prosody.range_, prosody.rate)
    return synthesise(sp, espeak_code(lang), text, prosody.rate, seed)


def _festival(voice: str, text: str) -> np.ndarray:
    ev = FESTIVAL_VOICES[voice]
    # Old festival voices read 8-bit text: Italian and Finnish Latin-1, Czech Latin-2; unknown letters become "?".
    data = text.encode(ev.encoding, errors="replace") if ev.encoding != "utf-8" else text.encode("utf-8")
    proc = subprocess.run(["text2wave", "-eval", f"(voice_{voice})", "-otype", "raw", "-F", str(SAMPLE_RATE),
                           "-o", "/dev/stdout"], input=data, capture_output=True, timeout=120)
    if proc.returncode != 0 or len(proc.stdout) < 100:
        raise RuntimeError(f"festival voice {voice} failed: {proc.stderr.decode(errors='replace')[-300:]}")
    pcm = np.frombuffer(proc.stdout[: len(proc.stdout) // 2 * 2], dtype="<i2")
    return (pcm.astype(np.float32) / 32768.0).astype(np.float32)
