"""Imports the source-tracing modules that register model types and corpus builders (the ``polyglot_suite.plugins``
entry point). Each module added to the family that registers something is imported here."""

from speech.source_trace import hub  # noqa: F401
