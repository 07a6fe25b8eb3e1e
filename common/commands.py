"""Registries behind the generic commands: what ``extend_language.py`` and ``make_corpus.py`` dispatch to.

The families fill them (see ``common/registry.py`` for how lookups find every family's entries).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from common.registry import Registry

LanguageExtender = Callable[[Mapping[str, Any]], Any]
"""``main(args)`` of an extension backend: the command's ``key=value`` arguments (strings), returns its report."""

LANGUAGE_EXTENDERS: Registry[LanguageExtender] = Registry("language extension")
"""A model directory's ``model_type`` (config.json) -> the backend that extends such a model to a new language."""

CorpusBuilder = Callable[[Any], Mapping[str, Any]]
"""Writes a corpus from its typed config and returns its statistics (with ``splits``)."""

CORPUS_BUILDERS: Registry[CorpusBuilder] = Registry("corpus builder")
"""The ``builder`` key of a corpus config (configs/corpus/*.yaml) -> the function that writes that corpus."""
