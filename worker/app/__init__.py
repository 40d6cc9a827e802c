"""The application: the `sessions` CLI, configuration, logs, metrics endpoint, ops server and the worker process."""
