"""One go-live of a release at a time, on the test harness's Prefect API."""

from __future__ import annotations

import pytest

from tasks.prefect_api import ReleaseLocked, release_lock


def test_a_held_release_is_refused_at_once_and_free_again_after():
    with release_lock("9.9.9"):
        with pytest.raises(ReleaseLocked, match="v9.9.9 is already being released"):
            with release_lock("9.9.9"):
                pass
        with release_lock("9.9.10"):  # another release is not held by this one
            pass
    with release_lock("9.9.9"):
        pass
