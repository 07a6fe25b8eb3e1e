"""Imports the text modules that register model types (found through the ``polyglot_suite.plugins`` entry point)."""

from text import retrieval_embedder, sentence_encoder  # noqa: F401
