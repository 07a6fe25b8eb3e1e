"""Imports the SSL modules that register model types (found through the ``polyglot_suite.plugins`` entry point)."""

from speech.ssl import hub  # noqa: F401
