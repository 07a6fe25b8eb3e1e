"""The suite's retrieval engine: faiss indexes over embeddings from any modality a model knows.

- ``embedders.py``: the registry families fill (``register_embedder(modality, extensions)``); no faiss needed.
- ``index.py``: flat / IVF / HNSW faiss indexes chosen by config, cosine through L2-normalised inner product.
- ``store.py``: the embedding cache of indexed files, keyed by content hash.
- ``engine.py``: ``Retriever`` (``from_pretrained(dir)``, ``search``, ``add``, ``save``).
- ``folder.py``: index a folder (resumable, bad files reported); ``evaluate.py``: recall@k, MRR, hit@k.

This ``__init__`` imports nothing, so registering an embedder never pulls in faiss.
"""
