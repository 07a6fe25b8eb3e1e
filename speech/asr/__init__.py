"""Multilingual CTC speech recognition."""
