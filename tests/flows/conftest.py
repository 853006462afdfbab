"""Flow tests: every one runs inside the session's Prefect test harness."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session", autouse=True)
def _inside_the_harness(prefect_harness):
    yield
