"""Imports the FLAME modules that register model types and retrieval embedders (the ``polyglot_suite.plugins``
entry point)."""

from vision.flame import clip_baseline, hub, retrieval  # noqa: F401
