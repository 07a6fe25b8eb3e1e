"""Speech: audio I/O and features, encoders, and the ASR, TTS and source-tracing families."""
