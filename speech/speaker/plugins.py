"""Imports the speaker modules that register model types (found through the ``polyglot_suite.plugins`` entry point)."""

from speech.speaker import hub  # noqa: F401
