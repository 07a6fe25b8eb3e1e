"""Datamodules, manifests, length bucketing and the generated default corpora."""
