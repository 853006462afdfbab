"""The Prefect server of the flow tests as a fixture: one temporary Prefect home and server per test
session, paid only by the tests that ask for it (flows, blocks); pure tests never start it.

It is the server `golive demo` and `golive go-live` start for themselves (`cli.prefect_env.start_server`:
Prefect's app, asking again what SQLite refused as busy), set as Prefect's API the way Prefect's
own `prefect_test_harness` sets its server's, so that the flow tests run on what users run."""

from __future__ import annotations

import pytest

from cli.prefect_env import configure_prefect, start_server, stop_server


@pytest.fixture(scope="session")
def prefect_harness(tmp_path_factory):
    home = tmp_path_factory.mktemp("prefect-home")
    configure_prefect(home)
    server, api_url = start_server(home)
    try:
        from prefect.context import _temporary_global_settings_context, get_settings_context
        from prefect.settings import PREFECT_API_URL, temporary_settings

        with temporary_settings(updates={PREFECT_API_URL: api_url}), \
                _temporary_global_settings_context(get_settings_context()):
            try:
                yield
            finally:
                _send_what_prefect_holds()
    finally:
        stop_server(server)


def _send_what_prefect_holds() -> None:
    """Prefect's logs and events still queued in this process, sent before the server stops."""
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker
    from prefect.utilities.asyncutils import run_coro_as_sync

    async def drain() -> None:
        for drained in (APILogWorker.instance().drain, EventsWorker.drain_all):
            try:
                result = drained()
                if hasattr(result, "__await__"):
                    await result
            except RuntimeError:  # a worker that never started
                pass

    run_coro_as_sync(drain())
