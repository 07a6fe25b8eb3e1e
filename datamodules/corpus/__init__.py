"""Corpus builders that write the default generated corpora in user-facing formats."""

# The builders register themselves in common.commands.CORPUS_BUILDERS where they are defined.
from datamodules.corpus import deepfake, music, music_real, sign, speech, text, text_dict, text_real, vision  # noqa: F401
