"""Unlabelled audio for self-supervised pretraining: the speech datamodule with transcripts ignored."""

from __future__ import annotations

from typing import Any

from datamodules.speech import SpeechDataModule
from text.char_vocab import CharVocab


class AudioOnlyDataModule(SpeechDataModule):
    """Any JSONL/TSV manifest with an ``audio`` column; ``text`` and ``lang`` may be absent and are never read.

    Batches keep the speech datamodule's layout (``wave``, ``wave_lens`` ...) with empty targets.
    """

    @property
    def vocab(self) -> CharVocab:
        """No characters: transcripts are not encoded."""
        if self._vocab is None:
            self._vocab = CharVocab([])
        return self._vocab

    def model_kwargs(self) -> dict[str, Any]:
        """A pretraining model needs nothing from the data to be built."""
        return {}
