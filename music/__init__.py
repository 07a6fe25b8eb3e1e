"""Music families: CLaMP 3 (music/clamp)."""
