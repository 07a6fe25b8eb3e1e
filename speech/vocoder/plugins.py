"""Imports the vocoder modules that register model types (found through the ``polyglot_suite.plugins`` entry point)."""

from speech.vocoder import hub  # noqa: F401
