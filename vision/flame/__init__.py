"""FLAME: language-image pretraining against a frozen LLM's multifaceted caption embeddings (issue 21)."""
