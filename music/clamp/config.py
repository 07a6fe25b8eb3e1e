"""CLaMP 3 architecture: a patch encoder shared by ABC and MTF, an audio encoder over segment features, a text tower,
all projected into one space. Named sizes are functions (``clamp3_tiny`` calls ``clamp3``)."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from text.sentence_encoder import SentenceEncoderConfig, sentence_encoder_tiny

AUDIO_FEATURES = ("logmel", "ssl")


@dataclass
class SymbolicConfig:
    """The M3-style patch encoder: characters -> one vector a patch -> a transformer over patches."""

    patch_size: int = 24
    """Characters in one patch; a longer bar or MTF message is cut into several patches."""
    max_patches: int = 128
    """Patches read from one score (the rest is dropped)."""
    char_dim: int = 16
    """Width of a character embedding; a patch is the flat concatenation of its characters', projected."""
    d_model: int = 128
    """Width of the patch transformer."""
    num_layers: int = 2
    """Patch transformer blocks."""
    num_heads: int = 4
    """Attention heads per block."""
    ffn_dim: int = 256
    """Hidden width of the feed-forward blocks."""
    dropout: float = 0.1
    """Dropout in the transformer."""


@dataclass
class AudioConfig:
    """Segment features of a recording and the transformer over them."""

    features: str = "logmel"
    """``logmel`` (mean log-mel per segment) or ``ssl`` (mean hidden state of a suite SSL encoder per segment)."""
    ssl_model: str | None = None
    """Directory of the SSL model when ``features=ssl`` (loaded through ``common.hub.load_pretrained``)."""
    n_mels: int = 96
    """Mel bands of the log-mel features."""
    n_fft: int = 1024
    """FFT size: 64 ms windows resolve semitones in the melody range."""
    f_max: float = 4000.0
    """Highest mel frequency; tunes live below it, and narrower bands mean finer pitch resolution."""
    segment_seconds: float = 0.25
    """Length of one segment (one input vector of the audio encoder)."""
    max_segments: int = 96
    """Segments read from one recording (24 s at 0.25 s)."""
    in_dim: int = 96
    """Width of one segment feature (``n_mels`` for log-mel, the SSL model's width for ``ssl``)."""
    d_model: int = 128
    """Width of the segment transformer."""
    num_layers: int = 2
    """Segment transformer blocks."""
    num_heads: int = 4
    """Attention heads per block."""
    ffn_dim: int = 256
    """Hidden width of the feed-forward blocks."""
    dropout: float = 0.1
    """Dropout in the transformer."""

    def __post_init__(self) -> None:
        if self.features not in AUDIO_FEATURES:
            raise ValueError(f"audio features {self.features!r}: choose one of {', '.join(AUDIO_FEATURES)}")
        if self.features == "ssl" and not self.ssl_model:
            raise ValueError("audio features 'ssl' need ssl_model=<directory of a suite SSL model>")


@dataclass
class ClampConfig:
    """Every tower of CLaMP 3 and the width of the space they share."""

    symbolic: SymbolicConfig = field(default_factory=SymbolicConfig)
    """The patch encoder, shared by ABC and MTF."""
    audio: AudioConfig = field(default_factory=AudioConfig)
    """The audio encoder."""
    text: SentenceEncoderConfig = field(default_factory=sentence_encoder_tiny)
    """The text tower (``text.sentence_encoder``); its ``embed_dim`` is the shared space's width."""

    def __post_init__(self) -> None:
        if isinstance(self.symbolic, dict):
            self.symbolic = SymbolicConfig(**self.symbolic)
        if isinstance(self.audio, dict):
            self.audio = AudioConfig(**self.audio)
        if isinstance(self.text, dict):
            self.text = SentenceEncoderConfig(**self.text)

    @property
    def embed_dim(self) -> int:
        """Width of the shared space."""
        return self.text.embed_dim

    @classmethod
    def from_dict(cls, config: dict[str, Any]) -> ClampConfig:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in config.items() if k in names})


def _split(overrides: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """``sym_<field>``, ``audio_<field>`` and ``text_<field>`` keys to per-tower dicts."""
    out: dict[str, dict[str, Any]] = {"sym": {}, "audio": {}, "text": {}}
    for key, value in overrides.items():
        prefix, _, name = key.partition("_")
        if prefix not in out or not name:
            raise ValueError(f"unknown CLaMP 3 size key {key!r}: use sym_<field>, audio_<field> or text_<field>")
        out[prefix][name] = value
    return out


def clamp3(**overrides: Any) -> ClampConfig:
    """The base architecture; keys ``sym_<field>``, ``audio_<field>``, ``text_<field>`` override single fields."""
    parts = _split(overrides)
    audio = dict(parts["audio"])
    if "n_mels" in audio and "in_dim" not in audio and audio.get("features", "logmel") == "logmel":
        audio["in_dim"] = audio["n_mels"]
    return ClampConfig(SymbolicConfig(**parts["sym"]), AudioConfig(**audio), SentenceEncoderConfig(**parts["text"]))


def clamp3_tiny(**overrides: Any) -> ClampConfig:
    """About 1.3M parameters plus the text embeddings; 64-character patches and 256 of them, so MTF holds a whole
    16-bar tune with its repeats; no dropout in the patch encoder (masking augments it), which lets attention take
    the fused CPU kernel: a symbolic step takes half the time. Both stages train on 2 busy CPU cores in 30 minutes."""
    return clamp3(**{"sym_patch_size": 64, "sym_max_patches": 256, "sym_dropout": 0.0, "text_d_model": 128,
                     "text_num_layers": 2, "text_num_heads": 4, "text_ffn_dim": 512, "text_embed_dim": 128,
                     "text_max_length": 96, **overrides})


def clamp3_small(**overrides: Any) -> ClampConfig:
    """Wider towers (256) and longer scores, for a GPU."""
    return clamp3(**{"sym_d_model": 256, "sym_num_layers": 4, "sym_ffn_dim": 1024, "sym_max_patches": 256,
                     "audio_d_model": 256, "audio_num_layers": 4, "audio_ffn_dim": 1024, "text_d_model": 256,
                     "text_num_layers": 4, "text_ffn_dim": 1024, "text_embed_dim": 256, **overrides})
