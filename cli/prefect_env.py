"""Prefect settings golive needs on small machines, set before Prefect is imported.

A flow run with no server configured starts a temporary one; on two cores it needs more than
Prefect's default 20 s to start, and analytics would only log errors offline. Defaults only:
anything already in the environment (a real server's PREFECT_API_URL, say) wins.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["configure_prefect"]


def configure_prefect(home: Path | None = None) -> None:
    os.environ.setdefault("PREFECT_HOME", str(home or Path.cwd() / ".golive" / "prefect"))
    Path(os.environ["PREFECT_HOME"]).mkdir(parents=True, exist_ok=True)  # Prefect makes no parents
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
