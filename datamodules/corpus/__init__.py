"""Corpus builders that write the default generated corpora in user-facing formats."""
