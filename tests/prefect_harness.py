"""The Prefect test harness as a fixture: one temporary Prefect home and server per test session,
paid only by the tests that ask for it (flows, blocks); pure tests never start it."""

from __future__ import annotations

import pytest

from cli.prefect_env import configure_prefect


@pytest.fixture(scope="session")
def prefect_harness(tmp_path_factory):
    configure_prefect(tmp_path_factory.mktemp("prefect-home"))
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield
