"""Speech encoders shared by the ASR, TTS and source-tracing families."""
