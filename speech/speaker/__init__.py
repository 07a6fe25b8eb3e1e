"""Speaker encoders shared by the TTS and source-tracing families: ECAPA-TDNN, AAM-softmax, speaker similarity."""
