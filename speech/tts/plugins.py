"""Imports the TTS modules that register model types (found through the ``polyglot_suite.plugins`` entry point)."""

from speech.tts import duration_hub, hub  # noqa: F401
