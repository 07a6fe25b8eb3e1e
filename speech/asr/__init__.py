"""Multilingual CTC speech recognition."""

from collections.abc import Mapping
from typing import Any

from common.commands import LANGUAGE_EXTENDERS


def _extend_ctc(args: Mapping[str, Any]) -> Any:
    """Few-shot language adapters (``speech.asr.extend``), imported when used: it pulls in the training stack."""
    from speech.asr.extend import main

    return main(dict(args))


for _model_type in ("ctc_conformer", "ctc_wav2vec2", "ctc_adapted"):
    LANGUAGE_EXTENDERS.add(_model_type, _extend_ctc)
