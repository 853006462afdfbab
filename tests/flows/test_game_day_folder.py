"""The game day's folder stays inside the evidence root, whatever the settings or the disk say."""

from __future__ import annotations

import pytest

from golive.settings import SettingsError, load_settings


def _settings(root, folder="game-day"):
    return load_settings({"release": "0.0.0-game-day",
                          "process": {"evidence_root": str(root), "game_day": {"folder": folder}}})


def test_the_days_folder_is_under_the_evidence_root(tmp_path):
    from flows.game_day import drill_folder

    assert drill_folder(_settings(tmp_path / "evidence", "drills/weekly"), "20260105") == str(
        tmp_path / "evidence" / "drills" / "weekly" / "20260105")


def test_a_game_day_folder_linked_out_of_the_evidence_root_is_refused(tmp_path):
    from flows.game_day import drill_folder

    root, elsewhere = tmp_path / "evidence", tmp_path / "elsewhere"
    root.mkdir()
    elsewhere.mkdir()
    (root / "game-day").symlink_to(elsewhere)
    with pytest.raises(SettingsError, match=r"^process\.game_day\.folder: .*20260105 leaves process\.evidence_root"):
        drill_folder(_settings(root), "20260105")


@pytest.mark.parametrize("folder", ["../outside", "/var/tmp/drills", "a/../../b"])
def test_a_game_day_folder_outside_the_evidence_root_is_refused_in_the_settings(tmp_path, folder):
    with pytest.raises(SettingsError, match=r"^process\.game_day\.folder: expected a folder inside"):
        _settings(tmp_path, folder)
