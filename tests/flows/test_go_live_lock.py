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
