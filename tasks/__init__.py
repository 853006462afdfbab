"""Prefect tasks, one module per outside system: thin, retryable on I/O, JSON-friendly results."""
