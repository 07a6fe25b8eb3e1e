"""Architecture of SONAR-SLT: the pose encoder, the text decoder, and named sizes."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

# MediaPipe face-mesh indices that carry the non-manual markers: lips, eyes, eyebrows, nose tip and the face
# outline's ends (a subset, so the 468 face points don't outweigh the hands).
FACE_SUBSET = (0, 13, 14, 17, 37, 39, 40, 61, 78, 81, 84, 87, 88, 91, 95, 146, 178, 181, 185, 191, 267, 269, 270,
               291, 308, 311, 314, 317, 318, 321, 324, 375, 402, 405, 409, 415,  # lips
               33, 133, 159, 145, 263, 362, 386, 374,  # eyes
               70, 105, 107, 300, 334, 336,  # eyebrows
               1, 4, 152, 10, 234, 454)  # nose, chin, forehead, cheeks
BODY_SUBSET = tuple(range(25))
"""Upper body: the legs (25-32) say nothing about signing."""


@dataclass
class PoseEncoderConfig:
    """The spatio-temporal transformer over keypoints."""

    d_model: int = 192
    """Width of the temporal transformer."""
    part_dim: int = 96
    """Width of each body part's per-frame embedding (body, left hand, right hand, face)."""
    spatial_layers: int = 1
    """Transformer layers across the four part tokens of one frame."""
    num_layers: int = 4
    """Temporal transformer layers."""
    num_heads: int = 4
    """Attention heads (spatial and temporal)."""
    ffn_dim: int = 512
    """Hidden width of the temporal feed-forward blocks."""
    subsample: int = 2
    """Temporal stride of the convolution before the temporal transformer."""
    max_frames: int = 512
    """Longest input in frames (learned positions after subsampling cover ``max_frames // subsample``)."""
    fps: float = 25.0
    """Frame rate the encoder was trained on; the translator resamples its inputs to it."""
    dropout: float = 0.1
    """Dropout in the transformers."""
    face_points: tuple[int, ...] = FACE_SUBSET
    """Face-mesh indices (0-467) the encoder reads."""
    body_points: tuple[int, ...] = BODY_SUBSET
    """Pose landmark indices (0-32) the encoder reads."""

    def __post_init__(self) -> None:
        self.face_points = tuple(self.face_points)  # JSON and YAML give lists
        self.body_points = tuple(self.body_points)


@dataclass
class DecoderConfig:
    """The text decoder conditioned on a sentence embedding and a target-language token."""

    vocab_size: int = 4000
    """Tokenizer pieces, language tokens included."""
    d_model: int = 256
    """Width of the decoder."""
    num_layers: int = 3
    """Transformer decoder layers."""
    num_heads: int = 4
    """Attention heads."""
    ffn_dim: int = 1024
    """Hidden width of each feed-forward block."""
    prefix_len: int = 4
    """Memory vectors the sentence embedding is projected into (what cross-attention reads)."""
    max_length: int = 96
    """Longest output in tokens (language token and end of sentence included)."""
    dropout: float = 0.1
    """Dropout in attention, feed-forward and embeddings."""


@dataclass
class SignTranslatorConfig:
    """The whole translator: pose encoder -> sentence embedding -> decoder."""

    embed_dim: int = 128
    """Width of the sentence embedding (the shared sentence encoder's)."""
    encoder: PoseEncoderConfig = field(default_factory=PoseEncoderConfig)
    """The pose encoder."""
    decoder: DecoderConfig = field(default_factory=DecoderConfig)
    """The text decoder."""
    langs: tuple[str, ...] = ()
    """Languages the decoder was trained to write (its tokenizer's language tokens)."""

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SignTranslatorConfig:
        """From ``asdict`` output or a ``config.json`` (unknown keys ignored)."""
        def pick(kind: type, src: Any) -> dict[str, Any]:
            names = {f.name for f in fields(kind)}
            return {k: v for k, v in dict(src or {}).items() if k in names}

        return cls(embed_dim=int(d.get("embed_dim", 128)),
                   encoder=PoseEncoderConfig(**pick(PoseEncoderConfig, d.get("encoder"))),
                   decoder=DecoderConfig(**pick(DecoderConfig, d.get("decoder"))),
                   langs=tuple(d.get("langs") or ()))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def slt(embed_dim: int = 128, vocab_size: int = 4000, langs: tuple[str, ...] | list[str] = (),
        encoder: dict[str, Any] | None = None, decoder: dict[str, Any] | None = None) -> SignTranslatorConfig:
    """The base sizes with any encoder/decoder field overridden."""
    return SignTranslatorConfig(embed_dim, PoseEncoderConfig(**(encoder or {})),
                                DecoderConfig(**{"vocab_size": vocab_size, **(decoder or {})}), tuple(langs))


def slt_tiny(embed_dim: int = 128, vocab_size: int = 4000, langs: tuple[str, ...] | list[str] = (),
             **overrides: Any) -> SignTranslatorConfig:
    """~1.5M parameters: trains on 2 CPU cores in tens of minutes. ``overrides``: ``enc_<field>`` / ``dec_<field>``."""
    enc = {"d_model": 128, "part_dim": 64, "num_layers": 3, "num_heads": 4, "ffn_dim": 256}
    dec = {"d_model": 192, "num_layers": 2, "num_heads": 4, "ffn_dim": 512}
    return slt(embed_dim, vocab_size, langs, _merge(enc, overrides, "enc_"), _merge(dec, overrides, "dec_"))


def slt_small(embed_dim: int = 128, vocab_size: int = 4000, langs: tuple[str, ...] | list[str] = (),
              **overrides: Any) -> SignTranslatorConfig:
    """~6M parameters: the base sizes (a GPU, or a longer CPU run)."""
    return slt(embed_dim, vocab_size, langs, _merge({}, overrides, "enc_"), _merge({}, overrides, "dec_"))


def _merge(base: dict[str, Any], overrides: dict[str, Any], prefix: str) -> dict[str, Any]:
    unknown = [k for k in overrides if not k.startswith(("enc_", "dec_"))]
    if unknown:
        raise TypeError(f"unknown size overrides {unknown}: encoder fields are enc_<field>, decoder fields dec_<field>")
    return {**base, **{k[len(prefix):]: v for k, v in overrides.items() if k.startswith(prefix)}}
