"""One go-live per traffic target and per release, on the test harness's Prefect API."""

from __future__ import annotations

import pytest

from tasks.prefect_api import GoLiveLocked, go_live_lock, lock_name


def test_a_held_target_is_refused_at_once_whatever_the_release_and_free_again_after():
    with go_live_lock("sandbox 127.0.0.1:18070", "9.9.9"):
        with pytest.raises(GoLiveLocked, match="the traffic target sandbox 127.0.0.1:18070 is already being moved"):
            with go_live_lock("sandbox 127.0.0.1:18070", "9.9.10"):  # another release of the same service
                pass
        with pytest.raises(GoLiveLocked, match="v9.9.9 is already being moved"):
            with go_live_lock("sandbox 127.0.0.1:28070", "9.9.9"):  # the same release's evidence elsewhere
                pass
        with go_live_lock("sandbox 127.0.0.1:28070", "9.9.10"):  # neither held
            pass
    with go_live_lock("sandbox 127.0.0.1:18070", "9.9.10"):
        pass


def test_a_refused_second_lock_frees_the_first():
    with go_live_lock("a", "1.0.0"):
        with pytest.raises(GoLiveLocked):
            with go_live_lock("b", "1.0.0"):
                pass
        with go_live_lock("b", "2.0.0"):  # "b" was let go when "1.0.0" was refused
            pass


def test_limit_names_are_readable_and_safe():
    assert lock_name("target", "ingress-nginx shop/spark") == "go-live-target-ingress-nginx-shop-spark"
    assert lock_name("release", "1.4.0-rc.1+build.7") == "go-live-release-1-4-0-rc-1-build-7"


def _orphan_slot(name: str, holder: dict) -> None:
    """A slot taken in the database whose lease is gone with its holder (a `golive go-live` killed
    with SIGKILL leaves one), and the variable that names the holder."""
    from prefect import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitUpdate, VariableCreate

    from tasks.prefect_api import _holder_variable

    with get_client(sync_client=True) as client:
        client.upsert_global_concurrency_limit_by_name(name, limit=1)
        client.update_global_concurrency_limit(name, GlobalConcurrencyLimitUpdate(active_slots=1))
        client.create_variable(VariableCreate(name=_holder_variable(name), value=holder))


def test_a_lock_whose_holder_process_died_is_taken_over_and_the_takeover_recorded():
    import socket
    import subprocess

    gone = subprocess.Popen(["true"])
    gone.wait()
    holder = {"flow_run": None, "host": socket.gethostname(), "pid": gone.pid, "process_start": "1", "at": 0.0}
    _orphan_slot(lock_name("target", "sandbox dead-holder"), holder)
    with go_live_lock("sandbox dead-holder", "9.8.7") as takeovers:
        with pytest.raises(GoLiveLocked):  # taken over, and held again: by this run
            with go_live_lock("sandbox dead-holder", "9.8.6"):
                pass
    (taken,) = takeovers
    assert taken["lock"] == "go-live-target-sandbox-dead-holder" and taken["holder"] == holder
    assert taken["why"] == f"its process {gone.pid} on {socket.gethostname()} is gone"
    with go_live_lock("sandbox dead-holder", "9.8.6") as takeovers:  # released by its holder: nothing to take over
        assert takeovers == []


def test_a_lock_whose_holder_run_ended_is_taken_over_and_a_live_holder_keeps_it():
    import os

    from prefect import flow

    from tasks.prefect_api import _process_start

    @flow
    def ended_run():
        from prefect.runtime import flow_run

        return str(flow_run.id)

    this_process = {"host": "another-host", "pid": os.getpid(), "process_start": _process_start(os.getpid())}
    _orphan_slot(lock_name("target", "sandbox ended-holder"), {**this_process, "flow_run": ended_run()})
    with go_live_lock("sandbox ended-holder", "9.8.5") as takeovers:
        assert takeovers[0]["why"].startswith("its flow run ") and takeovers[0]["why"].endswith(") ended Completed")
    _orphan_slot(lock_name("target", "sandbox live-holder"), {**this_process, "flow_run": None})
    with pytest.raises(GoLiveLocked, match="the traffic target sandbox live-holder is already being moved"):
        with go_live_lock("sandbox live-holder", "9.8.4"):
            pass


def test_a_slot_released_while_the_server_had_lost_its_lease_is_taken_over():
    from prefect import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitUpdate

    with go_live_lock("sandbox restarted-server", "9.8.3"):
        pass
    name = lock_name("target", "sandbox restarted-server")
    with get_client(sync_client=True) as client:  # the release a restarted server refused: still taken
        client.update_global_concurrency_limit(name, GlobalConcurrencyLimitUpdate(active_slots=1))
    with go_live_lock("sandbox restarted-server", "9.8.2") as takeovers:
        (taken,) = takeovers
    assert taken["lock"] == name and "released it, but the server had lost its lease" in taken["why"]
