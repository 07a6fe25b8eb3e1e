"""SONAR-SLT: sign-language translation supervised by language-agnostic sentence embeddings (issue 23)."""
