"""Text-to-speech in the manner of Voicebox: flow-matching infilling of log-mel frames from text and a voice prompt."""
