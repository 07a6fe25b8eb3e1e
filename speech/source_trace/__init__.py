"""Source tracing of generated speech: which system made this audio (issue 20)."""
