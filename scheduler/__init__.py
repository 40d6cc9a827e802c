"""The periodic jobs that emit reset and retention events (APScheduler, one process)."""
