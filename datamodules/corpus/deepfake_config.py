"""Settings of the deepfake source-tracing corpus (configs/corpus/deepfake.yaml; every field is a Hydra override)."""

from __future__ import annotations

from dataclasses import dataclass, field

from datamodules.corpus.deepfake_sources import SOURCES


@dataclass
class DeepfakeCorpusConfig:
    """What to generate and what to hold out."""

    out_dir: str = "data/deepfake"
    """Output folder: clips/, all.jsonl, protocols/, corpus.json."""
    langs: list[str] = field(default_factory=lambda: ["eng_Latn", "ita_Latn", "rus_Cyrl", "hin_Deva", "deu_Latn",
                                                      "spa_Latn"])
    """Languages (iso639-3_Script). Text comes from the suite's sentence lists and grammar, or ``text_files``."""
    sources: list[str] = field(default_factory=lambda: list(SOURCES))
    """Generators to render (deepfake_sources.SOURCES); ones that can't run here are left out and reported."""
    clips_per_source: int = 120
    """Clips of each source, spread evenly over the languages it speaks (so every class is about as large)."""
    clips_per_source_per_lang: int | None = None
    """A fixed number of clips of each source in each language instead (None: ``clips_per_source`` spread)."""
    channels: dict[str, float] = field(default_factory=lambda: {
        "clean": 0.4, "mp3_24k": 0.06, "mp3_64k": 0.06, "aac_32k": 0.06, "aac_64k": 0.06, "resample_8k": 0.06,
        "resample_11k": 0.06, "noise_snr15": 0.06, "noise_snr25": 0.06, "reverb": 0.06, "vorbis_32k": 0.06})
    """Channels of the clips that may be trained on, with weights (speech/channels.py CHANNELS)."""
    heldout_channels: list[str] = field(default_factory=lambda: ["opus_12k", "opus_16k", "opus_32k"])
    """Channels only the unseen_channel test hears (a whole codec, so training never meets it)."""
    heldout_langs: list[str] = field(default_factory=lambda: ["hin_Deva"])
    """Languages only the lolo test hears."""
    heldout_speakers: list[str] = field(default_factory=lambda: [
        "espeak:m3", "espeak:f2", "espeak:klatt2", "festival:ked_diphone", "festival:pc_diphone", "flite:kal16"])
    """Voices only the unseen_speaker test hears (also through resynthesis and as a TTS prompt)."""
    heldout_sources: list[str] = field(default_factory=lambda: ["flite_clustergen", "griffinlim_resynth"])
    """Generators only the unseen_generator (open-set) test hears."""
    mono_lang: str = "eng_Latn"
    """The one training language of the mono and cross_lingual protocols."""
    unseen_speaker_share: float = 0.15
    """Share of a source's clips spoken by held-out voices (where it has some)."""
    unseen_channel_share: float = 0.12
    """Share of a source's clips sent through a held-out channel."""
    split_shares: dict[str, float] = field(default_factory=lambda: {"train": 0.7, "dev": 0.1, "test": 0.2})
    """How the in-domain clips divide into train, dev and test."""
    duration: tuple[float, float] = (2.0, 5.0)
    """Clip length range in seconds; each clip draws its length uniformly, whatever its source."""
    pause: tuple[float, float] = (0.05, 0.3)
    """Range of the silence before and after the speech in seconds (drawn per clip)."""
    world_semitones: tuple[float, float] = (-3.0, 3.0)
    """Pitch-shift range of WORLD resynthesis."""
    world_formant_warp: tuple[float, float] = (0.9, 1.1)
    """Formant-warp range of WORLD resynthesis (half the clips keep the envelope)."""
    tts_bundles: dict[str, str] = field(default_factory=lambda: {
        "suite_tts_vocos": "runs/tts/bundle", "suite_tts_gl": "runs/tts/bundle_gl"})
    """The suite's TTS bundle of each suite_tts source (scripts/synthesize.py model=); missing: source left out."""
    tts_clips_per_lang: int = 8
    """Clips of each suite TTS source per language (its flow-matching sampler is the slowest generator by far)."""
    tts_nfe: int = 8
    """Sampler steps of the suite's TTS."""
    text_files: dict[str, str] = field(default_factory=dict)
    """Extra sentences per language (``{lang: path}``, one a line); the only text of ces_Latn, fin_Latn, cat_Latn."""
    bonafide_manifests: list[str] = field(default_factory=list)
    """JSONL manifests of real speech (``audio`` relative to the manifest, ``lang``, optional ``speaker``,
    ``text``): their clips become the ``bonafide`` source."""
    bonafide_per_lang: int = 0
    """Real clips per language taken from the manifests (0: ``clips_per_source`` over the manifests' languages)."""
    seed: int = 0
    """Seed of every draw (texts, voices, channels, lengths, splits)."""
    workers: int = 2
    """Processes that render clips."""
