"""Self-supervised pretraining of speech encoders (wav2vec 2.0)."""
