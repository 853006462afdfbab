"""The sandbox's folder and state file are outside input: a process golive cannot prove it
started is never stopped, and a folder or file that is not the sandbox's is refused in one line,
exit 2, with nothing started, stopped or written. No real sandbox is started here."""

from __future__ import annotations

import http.server
import json
import os
import subprocess
import threading

import pytest

from cli.main import main
from sandbox import control, processes
from sandbox.configs import Ports
from sandbox.control import Sandbox, SandboxFolderError

NOBODY = 65534


@pytest.fixture
def bystander():
    """A process the sandbox never started, which must outlive every test here."""
    process = subprocess.Popen(["sleep", "60"])
    try:
        yield process
    finally:
        process.kill()
        process.wait()


def _workdir(tmp_path, state: object, config: object | None = None):
    workdir = tmp_path / "sandbox"
    workdir.mkdir()
    config = config if config is not None else {"ports": Ports.from_base(38080).as_dict(), "release": "1.4.0"}
    (workdir / "config.json").write_text(json.dumps(config))
    (workdir / "state.json").write_text(state if isinstance(state, str) else json.dumps(state))
    return workdir


def _state(supervisor: dict, **components: dict) -> dict:
    return {"status": "running", "started_at": None, "supervisor": supervisor, "components": components}


def test_down_never_stops_a_process_recorded_without_its_start_time(tmp_path, bystander, capsys):
    workdir = _workdir(tmp_path, _state({"pid": bystander.pid, "ticks": None},
                                        canary={"pid": bystander.pid, "ticks": None, "port": 38082}))
    assert main(["sandbox", "--workdir", str(workdir), "down"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == ["no sandbox was running",
                   f"left alone: supervisor (pid {bystander.pid}: no start time recorded, so not provably the "
                   "sandbox's)",
                   f"left alone: canary (pid {bystander.pid}: no start time recorded, so not provably the sandbox's)"]
    assert bystander.poll() is None


def test_leftovers_are_stopped_only_when_pid_and_start_time_both_match(tmp_path, bystander):
    ticks = processes.start_ticks(bystander.pid)
    workdir = _workdir(tmp_path, _state({"pid": 2 ** 22 + 7, "ticks": 1},
                                        stable={"pid": bystander.pid, "ticks": ticks + 1, "port": None},
                                        canary={"pid": bystander.pid, "ticks": None, "port": None}))
    Sandbox(workdir)._stop_leftovers()
    assert bystander.poll() is None
    assert not processes.send(bystander.pid, 0, None)


@pytest.mark.parametrize(("state", "error"), [
    ("{not json", "state.json: not JSON the sandbox wrote"),
    ("[" * 100000, "state.json: not JSON the sandbox wrote"),
    ("[]", "state.json: expected an object with supervisor and components"),
    (_state({"pid": "1", "ticks": 5}), "state.json: supervisor.pid: expected a process id, got 1"),
    (_state({"pid": -1, "ticks": 5}), "state.json: supervisor.pid: expected a process id, got -1"),
    (_state({"pid": True, "ticks": 5}), "state.json: supervisor.pid: expected a process id, got True"),
    (_state(None), "state.json: supervisor: expected an object with pid and ticks"),
    (_state({"pid": 1, "ticks": "x"}), "state.json: supervisor.ticks: expected a start time in clock ticks or null"),
    ("BYSTANDER", "state.json: components.canary\\nx.port: expected a port number or null, got 99999"),
    ({"status": 1, "supervisor": {}, "components": {}}, "state.json: status: expected text"),
])
def test_a_state_file_that_is_not_the_sandboxs_is_refused_and_nothing_is_stopped(tmp_path, bystander, capsys, state,
                                                                                  error):
    if state == "BYSTANDER":  # the supervisor record is sound and its process provably there: still not touched
        state = _state({"pid": bystander.pid, "ticks": processes.start_ticks(bystander.pid)},
                       **{"canary\nx": {"pid": bystander.pid, "ticks": None, "port": 99999}})
    workdir = _workdir(tmp_path, state)
    for verb in ("down", "status"):
        assert main(["sandbox", "--workdir", str(workdir), verb]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"golive sandbox: {workdir}/") and err.endswith("\n") and err.count("\n") == 1
        assert error in err
    assert bystander.poll() is None
    assert (workdir / "state.json").exists()


@pytest.mark.parametrize(("config", "error"), [
    ([1], "config.json: expected an object"),
    ({"ports": {"router": "x"}}, "config.json: ports: expected each part's port number"),
    ({"ports": {"nginx": 1}}, "config.json: ports: expected each part's port number"),
])
def test_a_config_file_that_is_not_the_sandboxs_is_refused_before_anything_is_stopped(tmp_path, bystander, capsys,
                                                                                       config, error):
    ticks = processes.start_ticks(bystander.pid)
    workdir = _workdir(tmp_path, _state({"pid": bystander.pid, "ticks": ticks}), config)
    assert main(["sandbox", "--workdir", str(workdir), "down"]) == 2
    assert error in capsys.readouterr().err
    assert bystander.poll() is None


def test_a_sandbox_folder_that_is_a_symbolic_link_is_refused(tmp_path, capsys):
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "sandbox").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(SandboxFolderError, match="a symbolic link"):
        Sandbox(tmp_path / "sandbox")
    assert main(["sandbox", "--workdir", str(tmp_path / "sandbox"), "status"]) == 2
    assert capsys.readouterr().err == (f"golive sandbox: {tmp_path}/sandbox: a symbolic link; the sandbox's folder "
                                       "must be a folder of its own\n")


@pytest.mark.skipif(os.geteuid() != 0, reason="making a folder another user owns needs root")
def test_the_default_folder_owned_by_another_user_is_refused(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("GOLIVE_SANDBOX_DIR", raising=False)
    monkeypatch.setattr(control.tempfile, "gettempdir", lambda: str(tmp_path))
    planted = tmp_path / f"golive-sandbox-{os.getuid()}"
    planted.mkdir()
    os.chown(planted, NOBODY, NOBODY)
    assert control.default_workdir() == planted
    with pytest.raises(SandboxFolderError, match=f"owned by uid {NOBODY}, not by this user"):
        Sandbox()
    assert main(["sandbox", "down"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"golive sandbox: {planted}: owned by uid {NOBODY}") and err.count("\n") == 1
    assert list(planted.iterdir()) == []


@pytest.mark.skipif(os.geteuid() != 0, reason="making a folder another user owns needs root")
def test_a_command_that_reads_the_sandbox_refuses_a_planted_folder_in_one_line(tmp_path, monkeypatch, capsys):
    planted = tmp_path / "planted"
    planted.mkdir()
    os.chown(planted, NOBODY, NOBODY)
    assert main(["close", "--release", "1.4.0", "--sandbox-workdir", str(planted)]) == 2
    assert capsys.readouterr().err.startswith(f"golive: {planted}: owned by uid {NOBODY}")


def test_a_new_sandbox_folder_is_private(tmp_path):
    control._make_own_folder(tmp_path / "new" / "sandbox")
    assert (tmp_path / "new" / "sandbox").stat().st_mode & 0o777 == 0o700


def test_a_path_where_up_would_write_its_settings_is_checked_before_anything_starts(tmp_path, capsys):
    workdir = tmp_path / "sandbox"
    settings_file = tmp_path / "missing" / "golive.yaml"
    assert main(["sandbox", "--workdir", str(workdir), "up", "--config", str(settings_file)]) == 2
    assert capsys.readouterr().err == (f"golive sandbox: --config {tmp_path}/missing/golive.yaml: "
                                       f"{tmp_path}/missing does not exist\n")
    assert not workdir.exists()


class _Answers(http.server.BaseHTTPRequestHandler):
    """Whatever listens on a sandbox port: every request gets the class's `status` and `body`."""

    status, body = 200, b""

    def _answer(self):
        self.send_response(self.status)
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    do_GET = do_POST = do_PUT = do_DELETE = _answer

    def log_message(self, *args):
        pass


@pytest.fixture
def listener():
    """A port that answers as a test says, and a way to say it."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), type("Listener", (_Answers,), {}))
    threading.Thread(target=server.serve_forever, daemon=True).start()

    def answer(status: int, body: bytes) -> None:
        server.RequestHandlerClass.status, server.RequestHandlerClass.body = status, body

    yield server.server_address[1], answer
    server.shutdown()
    server.server_close()


def _ports_at(port: int) -> dict:
    return {name: port for name in Ports.__dataclass_fields__}


STRANGE_ANSWERS = [
    (200, b"<html>It works!</html>", "answered 200 without a JSON object: <html>It works!</html>"),
    (502, b"Bad Gateway", "answered 502 without a JSON object: Bad Gateway"),
    (200, b"[1, 2]", "answered 200 without a JSON object: [1, 2]"),
    (200, b"[" * 100000, "answered 200 without a JSON object: " + "[" * 80),
    (500, b'{"error": "broken\\nFAIL forged"}', "broken\\nFAIL forged"),
]


ANSWER_IDS = ["a web page", "bad gateway", "a list", "nested too deeply", "an error with a line break"]


@pytest.mark.parametrize(("status", "body", "said"), STRANGE_ANSWERS, ids=ANSWER_IDS)
def test_an_admin_port_that_answers_strangely_is_one_line(tmp_path, capsys, listener, status, body, said):
    port, answer = listener
    answer(status, body)
    workdir = _workdir(tmp_path, _state({"pid": 2 ** 22 + 7, "ticks": 1}), {"ports": _ports_at(port)})
    assert main(["sandbox", "--workdir", str(workdir), "fault", "canary"]) == 1
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1
    assert captured.err.startswith("golive sandbox: ") and captured.err.endswith(f"{said}\n")


@pytest.mark.parametrize(("status", "body", "said"), [
    *STRANGE_ANSWERS, (200, b'{"weight": "50"}', "the router's control API answered no weight (`weight`: 50)")],
    ids=[*ANSWER_IDS, "no weight"])
def test_a_control_port_that_answers_strangely_is_one_line(tmp_path, capsys, monkeypatch, listener, status, body,
                                                           said):
    port, answer = listener
    answer(status, body)
    workdir = _workdir(tmp_path, _state({"pid": 2 ** 22 + 7, "ticks": 1}), {"ports": _ports_at(port)})
    monkeypatch.setattr(Sandbox, "running", lambda self: True)
    assert main(["sandbox", "--workdir", str(workdir), "weight"]) == 1
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1
    assert captured.err.startswith("golive sandbox: ") and captured.err.endswith(f"{said}\n")


def test_a_state_file_that_is_a_fifo_is_refused_instead_of_read_for_ever(tmp_path, capsys):
    workdir = _workdir(tmp_path, _state({"pid": 2 ** 22 + 7, "ticks": 1}))
    (workdir / "state.json").unlink()
    os.mkfifo(workdir / "state.json")
    codes: list[int] = []
    status = threading.Thread(target=lambda: codes.append(main(["sandbox", "--workdir", str(workdir), "status"])),
                              daemon=True)
    status.start()
    status.join(5)
    if status.is_alive():  # let the read that never ends end, so the thread does not outlive the test
        with open(workdir / "state.json", "wb"):
            pass
        status.join(5)
    assert codes == [2]
    assert capsys.readouterr().err == f"golive sandbox: {workdir}/state.json: not a file the sandbox wrote\n"


def test_a_part_named_in_the_state_file_is_printed_on_one_line(tmp_path, capsys):
    forged = "stable\nall 8 components up; canary weight 0"
    workdir = _workdir(tmp_path, _state({"pid": 2 ** 22 + 7, "ticks": 1},
                                        **{forged: {"pid": 2 ** 22 + 9, "ticks": 1, "port": None}}))
    assert main(["sandbox", "--workdir", str(workdir), "status"]) == 1
    shown = "stable\\nall 8 components up; canary weight 0"
    assert capsys.readouterr().out.splitlines() == [f"  {shown} dead           pid {2 ** 22 + 9:<8}",
                                                    f"not running: {shown}"]
