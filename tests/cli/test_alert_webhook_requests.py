"""`golive alert-webhook` refuses what is not Alertmanager's authenticated notification before
reading it: no bearer token (401), no or a bad Content-Length (411, 400), a body too large (413);
and it will not start without a token."""

from __future__ import annotations

import socket

import pytest

from cli.alert_webhook import TOKEN_ENV, AlertReceiver, TokenMissing, read_token

TOKEN = "s3cret-shared-token"
NOTIFICATION = b'{"version": "4", "status": "firing", "alerts": []}'


@pytest.fixture
def receiver(tmp_path):
    receiver = AlertReceiver({"process": {"evidence_root": str(tmp_path)}}, token=TOKEN).start()
    yield receiver
    receiver.stop()


def _post(receiver, headers: dict[str, str], body: bytes = b"") -> tuple[int, str]:
    """One raw request (so headers can be missing or malformed); the status and the body."""
    port = receiver.server.server_port
    lines = ["POST /alertmanager HTTP/1.1", f"Host: 127.0.0.1:{port}"] + [f"{k}: {v}" for k, v in headers.items()]
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        conn.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        conn.shutdown(socket.SHUT_WR)
        answer = b""
        while chunk := conn.recv(4096):
            answer += chunk
    head, _, text = answer.decode().partition("\r\n\r\n")
    return int(head.split()[1]), text.strip()


def _authorized(**headers: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKEN}", **headers}


def test_a_request_without_the_token_is_refused_before_its_body_is_read(receiver):
    length = {"Content-Length": str(len(NOTIFICATION))}
    assert _post(receiver, length, NOTIFICATION)[0] == 401
    assert _post(receiver, {"Authorization": "Bearer wrong", **length}, NOTIFICATION)[0] == 401
    assert _post(receiver, {"Authorization": TOKEN, **length}, NOTIFICATION)[0] == 401
    assert _post(receiver, _authorized(**length), NOTIFICATION) == (200, "0 acting")


@pytest.mark.parametrize("length, status", [(None, 411), ("abc", 400), ("-1", 400), ("1.5", 400), ("²", 400),
                                            (str((1 << 20) + 1), 413)])
def test_a_missing_or_bad_content_length_is_answered_not_read_until_close(receiver, length, status):
    headers = _authorized() if length is None else _authorized(**{"Content-Length": length})
    answered, text = _post(receiver, headers, NOTIFICATION)
    assert answered == status
    assert text.startswith("Content-Length") or text.startswith("larger than")


def test_the_token_comes_from_a_file_or_the_environment_and_is_required(tmp_path, monkeypatch):
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    with pytest.raises(TokenMissing, match="^--token-file: required"):
        read_token(None)
    monkeypatch.setenv(TOKEN_ENV, "from-the-environment")
    assert read_token(None) == "from-the-environment"
    (tmp_path / "token").write_text("from-a-file\n")
    assert read_token(str(tmp_path / "token")) == "from-a-file"
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(TokenMissing, match="^--token-file: the file is empty$"):
        read_token(str(tmp_path / "empty"))
    with pytest.raises(TokenMissing):
        AlertReceiver({"process": {"evidence_root": str(tmp_path)}}, token="")


@pytest.mark.parametrize("port", ["99999", "-1"])
def test_a_port_out_of_range_is_one_line(tmp_path, capsys, port):
    from cli.main import main

    (tmp_path / "token").write_text("t\n")
    assert main(["alert-webhook", "--token-file", str(tmp_path / "token"), "--port", port]) == 2
    captured = capsys.readouterr()
    assert captured.err == f"golive alert-webhook: --port: expected a port from 0 (any free one) to 65535, got {port}\n"


def test_stopping_waits_for_a_rollback_under_way_and_starts_none(receiver):
    import json
    import threading
    import time

    finished = threading.Event()

    def slow_rollback(_alerts):
        time.sleep(1.0)
        finished.set()

    receiver.act = slow_rollback
    alert = {"status": "firing", "labels": {"alertname": "A", "severity": "critical", "service": receiver.service},
             "startsAt": "2026-12-04T09:00:00Z"}
    body = json.dumps({"version": "4", "status": "firing", "alerts": [alert]}).encode()
    assert _post(receiver, _authorized(**{"Content-Length": str(len(body))}), body) == (200, "1 acting")
    receiver.stop()
    assert finished.is_set()
    assert receiver.begin_acting([alert]) is False


def test_sigterm_stops_the_webhook_like_ctrl_c(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    from pathlib import Path

    from sandbox.processes import free_ports

    (tmp_path / "golive.yaml").write_text(f"process:\n  evidence_root: {tmp_path / 'evidence'}\n")
    (tmp_path / "token").write_text(TOKEN)
    golive = Path(sys.executable).with_name("golive")
    process = subprocess.Popen(
        [str(golive), "alert-webhook", "--config", str(tmp_path / "golive.yaml"), "--port", str(free_ports(1)[0]),
         "--token-file", str(tmp_path / "token")], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={k: v for k, v in os.environ.items() if k != TOKEN_ENV})
    try:
        assert process.stdout.readline().startswith("receiving Alertmanager's notifications at")
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, err
    assert "stopping" in out and "Traceback" not in err and TOKEN not in out + err


def test_the_stage_a_rollback_records_is_the_routers_weight_the_shadow_while_it_mirrors_at_0_else_none():
    from cli.alert_webhook import _stage_of
    from golive.models import WeightReading
    from golive.stage import SHADOW_STAGE

    assert _stage_of(WeightReading(in_force=25, at=0.0)) == 25
    assert _stage_of(WeightReading(in_force=0, at=0.0, mirror=True)) == SHADOW_STAGE
    assert _stage_of(WeightReading(in_force=0, at=0.0)) is None
