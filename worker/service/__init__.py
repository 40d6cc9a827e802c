"""The broker-free runtime: decoding an event, applying it exactly once, and the outcome it publishes."""
