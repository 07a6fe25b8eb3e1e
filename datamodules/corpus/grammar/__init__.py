"""A compositional grammar: structured meanings realised as sentences in many languages."""
