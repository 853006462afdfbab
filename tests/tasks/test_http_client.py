"""A run's clients: made once, shared by its subflows and by the threads its tasks run in,
closed when the run that made them ends; outside any run, the process keeps its own."""

from __future__ import annotations

import contextvars
import threading

from prometheus_api_client import PrometheusConnect

from golive.settings import PrometheusSettings
from tasks.http_client import clients_for_this_run, shared_client
from tasks.prometheus import _prometheus


def test_a_run_makes_its_client_once_and_closes_it_when_it_ends():
    outside = shared_client()
    with clients_for_this_run():
        client = shared_client()
        assert shared_client() is client and client is not outside
    assert client.is_closed
    assert not outside.is_closed and shared_client() is outside


def test_a_subflow_shares_its_parents_clients_and_leaves_them_open():
    with clients_for_this_run() as outer:
        client = shared_client()
        with clients_for_this_run() as inner:
            assert inner is outer and shared_client() is client
        assert not client.is_closed
    assert client.is_closed


def test_a_task_in_another_thread_with_the_runs_context_shares_its_client():
    with clients_for_this_run():
        client = shared_client()
        seen = []
        context = contextvars.copy_context()  # what Prefect's thread pool task runner hands its threads
        thread = threading.Thread(target=context.run, args=(lambda: seen.append(shared_client()),))
        thread.start()
        thread.join()
        assert seen == [client]


def test_the_prometheus_client_is_the_runs_and_is_closed_with_it(monkeypatch):
    closed = []
    monkeypatch.setattr(PrometheusConnect, "close", lambda self: closed.append(self))
    settings = PrometheusSettings(url="http://127.0.0.1:9")
    with clients_for_this_run():
        client = _prometheus(settings)
        assert _prometheus(settings) is client
    assert closed == [client]
    with clients_for_this_run():
        assert _prometheus(settings) is not client  # a new run, a new client (and its Secret block read anew)
