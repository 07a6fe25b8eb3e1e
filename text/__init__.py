"""Shared multilingual text pieces: normalisation, tokenizers and (later) text towers."""

from collections.abc import Mapping
from typing import Any

from common.commands import LANGUAGE_EXTENDERS


@LANGUAGE_EXTENDERS.register("sentence_encoder")
def _extend_sentence_encoder(args: Mapping[str, Any]) -> Any:
    """Distillation onto a new language (``text.extend``), imported when used: it pulls in Lightning."""
    from text.extend import main

    return main(dict(args))
