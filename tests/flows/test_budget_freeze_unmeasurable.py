"""The freeze writer's lock is named by golive.layout, like every file of the evidence root."""

from __future__ import annotations

from golive import layout


def test_the_freeze_writers_lock_is_the_layouts_name(tmp_path):
    from flows.error_budget_freeze import _FolderLock

    with _FolderLock(tmp_path / "error-budget"):
        assert (tmp_path / "error-budget" / layout.BUDGET_LOCK).exists()
