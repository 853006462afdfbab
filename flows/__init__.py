"""Prefect flows: orchestration only, one deployable flow per file, reading like the runbook."""
