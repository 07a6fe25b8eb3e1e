"""Imports the CLaMP 3 modules that register model types, retrieval embedders and corpus builders (the
``polyglot_suite.plugins`` entry point). Each module added to the family that registers something is imported here."""

from music.clamp import hub, retrieval  # noqa: F401
