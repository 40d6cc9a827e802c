"""The application: the `sessions` CLI, logs, the ops server (metrics, health, readiness) and start-up checks."""
