"""LLM-style ASR: a speech encoder feeding a byte-level decoder-only language model."""
