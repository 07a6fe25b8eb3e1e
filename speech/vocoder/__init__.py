"""Waveform synthesis from log-mel frames: the shared mel definition, Griffin-Lim and neural vocoders."""
