"""`golive server down` stops only what it can prove `up` started and removes only a database
folder golive made: a state file that says otherwise is one line, exit 2, nothing touched."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from cli.main import main
from sandbox.processes import start_ticks


@pytest.fixture
def bystander():
    """A process that golive did not start (and must not stop)."""
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True)
    try:
        yield process
    finally:
        process.kill()
        process.wait()


def _down(folder) -> int:
    return main(["server", "down", "--folder", str(folder)])


@pytest.mark.parametrize("recorded", [
    lambda pid: {"worker": {"pid": pid, "ticks": None}},  # no start: cannot be told from a reused pid
    lambda pid: {"worker": {"pid": pid}},
    lambda pid: {"worker": {"pid": str(pid), "ticks": 1}},
    lambda pid: [pid],
])
def test_a_process_recorded_without_its_start_is_never_stopped(tmp_path, bystander, capsys, recorded):
    (tmp_path / "state.json").write_text(json.dumps({"api_url": "http://127.0.0.1:1/api",
                                                     "processes": recorded(bystander.pid)}))
    assert _down(tmp_path) == 2
    assert capsys.readouterr().err.startswith(f"golive: {tmp_path}/state.json: not a state file golive wrote")
    assert bystander.poll() is None


def test_a_process_whose_pid_was_reused_is_left_alone(tmp_path, bystander, capsys):
    (tmp_path / "state.json").write_text(json.dumps({"api_url": "http://127.0.0.1:1/api", "processes": {
        "worker": {"pid": bystander.pid, "ticks": start_ticks(bystander.pid) - 1}}}))
    assert _down(tmp_path) == 0
    assert capsys.readouterr().out == "stopped: nothing was running\n"
    assert bystander.poll() is None


def test_a_database_folder_golive_did_not_make_is_never_removed(tmp_path, capsys):
    precious = tmp_path / "precious"
    precious.mkdir()
    (tmp_path / "state.json").write_text(json.dumps({"api_url": "http://127.0.0.1:1/api", "processes": {},
                                                     "postgres": {"data_dir": str(precious)}}))
    assert _down(tmp_path) == 2
    assert "names a PostgreSQL folder golive did not make" in capsys.readouterr().err
    assert precious.exists()


def test_a_state_file_that_is_no_json_is_one_line(tmp_path, capsys):
    (tmp_path / "state.json").write_bytes(b"\xff\xfe not json")
    assert _down(tmp_path) == 2
    assert capsys.readouterr().err == f"golive: {tmp_path}/state.json: not a state file golive wrote; move it away\n"
