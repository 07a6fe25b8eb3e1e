"""Pieces shared by every family: atomic I/O, error-rate metrics, run helpers."""
