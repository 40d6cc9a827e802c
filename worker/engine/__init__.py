"""The pure session engine: scopes, resets, delivery context, transcript entries, tokens, crypto, redaction.

Nothing here does I/O or knows a store; the packages above build on it.
"""
