"""Corpus builders that write the default generated corpora in user-facing formats."""

# The builders register themselves in common.commands.CORPUS_BUILDERS where they are defined.
from datamodules.corpus import speech, text, text_real, vision  # noqa: F401
from datamodules.corpus import music  # noqa: F401
from datamodules.corpus import sign  # noqa: F401
from datamodules.corpus import deepfake  # noqa: F401
