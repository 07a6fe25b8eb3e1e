"""Imports the FLAME modules that register model types (found through the ``polyglot_suite.plugins`` entry point)."""

from vision.flame import clip_baseline, hub  # noqa: F401
