"""Shared multilingual text pieces: normalisation, tokenizers and (later) text towers."""
