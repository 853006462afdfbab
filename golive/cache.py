"""Where golive keeps what it can always make again (an environment's SBOM, a migrated Prefect
database): `GOLIVE_CACHE_DIR`, by default `.golive/cache` under the working folder. Losing it
only costs time."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["cache_dir"]


def cache_dir() -> Path:
    return Path(os.environ.get("GOLIVE_CACHE_DIR", ".golive/cache"))
