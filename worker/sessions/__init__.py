"""The session library over the store protocol: the manager and what it composes (slots, transcript,
checkpoints, context windows, retention, resume, agents, redaction, key rotation)."""
