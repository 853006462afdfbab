"""The logger of the run a step belongs to, or golive's own when it runs outside any (a rollback
whose Prefect server does not answer runs its steps as plain functions)."""

from __future__ import annotations

import logging

from prefect import get_run_logger
from prefect.exceptions import MissingContextError

__all__ = ["run_logger"]


def run_logger() -> logging.Logger | logging.LoggerAdapter:
    try:
        return get_run_logger()
    except MissingContextError:
        return logging.getLogger("golive")
