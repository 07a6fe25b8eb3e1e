"""Generators of the deepfake corpus: which systems exist, their architecture family, voices and languages.

A source is one generator system (the label to trace); its voices are the speakers. espeak-ng, festival and flite
render text directly (through ``datamodules.corpus.voices`` for espeak-ng and flite); the resynthesis sources
re-vocode speech of those engines; the suite's TTS runs as a subprocess (``deepfake_tts.py``).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass

import numpy as np

from datamodules.corpus.languages import LANGUAGES
from datamodules.corpus.voices import (
    FESTIVAL_VOICES,
    EngineVoice,
    Speaker,
    festival_installed,
    festival_wave,
    synthesise,
)


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
        return festival_wave(voice, text)
    quality = {"espeak": "modal", "flite": "flite"}.get(engine)
    if quality is None:
        raise ValueError(f"{speaker}: not a text-to-speech voice (espeak:, festival: or flite:)")
    sp = Speaker(speaker, quality, voice, prosody.pitch, prosody.range_, prosody.rate)
    return synthesise(sp, espeak_code(lang), text, prosody.rate, seed)
