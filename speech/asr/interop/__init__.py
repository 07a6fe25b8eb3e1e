"""Foreign checkpoints: transformers (wav2vec2 / XLS-R / MMS) and fairseq2 (wav2vec2, Omnilingual ASR CTC)."""
