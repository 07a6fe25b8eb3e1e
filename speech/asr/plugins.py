"""Imports the ASR modules that register model types (found through the ``polyglot_suite.plugins`` entry point)."""

from speech.asr import adapters, hub, lid  # noqa: F401
from speech.asr.llm import hub as llm_hub  # noqa: F401
from speech.asr.llm import infer as llm_infer  # noqa: F401
