"""CLaMP 3: retrieval across sheet music, MIDI, audio and multilingual text (issue 22)."""
