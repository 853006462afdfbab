"""`golive rules`, `golive dashboard` and `golive card` write where --out says, or refuse in one
line (exit 2) before anything is written; and they name the service they used."""

from __future__ import annotations

import http.server
import json
import os
import threading
import time

import pytest
import yaml

from cli.main import main

UNWRITABLE = "/sys/golive-test-output"


def _bad_outs(tmp_path):
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    (tmp_path / "a-folder").mkdir()
    return {"a folder": (tmp_path / "a-folder", "a folder; name a file to write"),
            "a missing parent": (tmp_path / "missing" / "out", f"{tmp_path / 'missing'} does not exist"),
            "a parent that is a file": (a_file / "out", f"{a_file} is not a folder")}


@pytest.mark.parametrize("command", ["rules", "dashboard"])
@pytest.mark.parametrize("case", ["a folder", "a missing parent", "a parent that is a file"])
def test_a_bad_out_is_one_line_and_nothing_written(tmp_path, capsys, command, case):
    out, reason = _bad_outs(tmp_path)[case]
    before = sorted(tmp_path.rglob("*"))
    assert main([command, "--out", str(out)]) == 2
    captured = capsys.readouterr()
    assert (captured.out, captured.err) == ("", f"golive {command}: --out {out}: {reason}\n")
    assert sorted(tmp_path.rglob("*")) == before


@pytest.mark.skipif(not os.path.ismount("/sys"), reason="no /sys mounted here")
@pytest.mark.parametrize("command", ["rules", "dashboard"])
def test_an_unwritable_out_is_one_line(capsys, command):
    assert main([command, "--out", UNWRITABLE]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"golive {command}: --out {UNWRITABLE}") and err.count("\n") == 1


def test_a_bad_png_is_refused_before_the_dashboard_is_written(tmp_path, capsys):
    out = tmp_path / "board.json"
    assert main(["dashboard", "--out", str(out), "--png", str(tmp_path / "missing" / "p.png")]) == 2
    assert capsys.readouterr().err == f"golive dashboard: --png {tmp_path / 'missing' / 'p.png'}: " \
                                      f"{tmp_path / 'missing'} does not exist\n"
    assert not out.exists()


@pytest.mark.parametrize("command", ["rules", "dashboard"])
def test_rules_and_dashboard_name_the_service_they_used(tmp_path, capsys, command):
    config = tmp_path / "golive.yaml"
    config.write_text(yaml.safe_dump({"target": {"service": "payments"}}))
    assert main([command, "--out", str(tmp_path / "out"), "--config", str(config)]) == 0
    assert capsys.readouterr().out.startswith(f"{command} for payments: ")
    assert main([command, "--out", str(tmp_path / "out"), "--config", str(config), "--service", "ledger"]) == 0
    assert capsys.readouterr().out.startswith(f"{command} for ledger: ")


def test_a_settings_error_is_exit_2(tmp_path, capsys):
    config = tmp_path / "golive.yaml"
    config.write_text("policy: {dwell_seconds: '900'}\n")
    assert main(["rules", "--out", str(tmp_path / "out"), "--config", str(config)]) == 2
    assert capsys.readouterr().err == "golive rules: policy.dwell_seconds: Input should be a valid number\n"
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("case", ["a file", "a missing parent", "a parent that is a file", "unwritable"])
def test_a_bad_card_folder_is_one_line_and_nothing_written(tmp_path, capsys, case):
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    out, reason = {"a file": (a_file, "not a folder"),
                   "a missing parent": (tmp_path / "missing" / "card", f"{tmp_path / 'missing'} does not exist"),
                   "a parent that is a file": (a_file / "card", f"{a_file} is not a folder"),
                   "unwritable": (UNWRITABLE, None)}[case]
    if case == "unwritable" and not os.path.ismount("/sys"):
        pytest.skip("no /sys mounted here")
    before = sorted(tmp_path.rglob("*"))
    assert main(["card", "--release", "1.4.0", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"golive: --out {out}") and err.count("\n") == 1
    if reason:
        assert err == f"golive: --out {out}: {reason}\n"
    assert sorted(tmp_path.rglob("*")) == before


def test_a_link_too_long_for_a_qr_code_is_one_line_and_nothing_written(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    link = "https://docs.example/" + "a" * 5000
    assert main(["card", "--release", "1.4.0", "--link", link]) == 2
    said = capsys.readouterr().err
    assert said == "golive: --link: 5021 characters are too many for a QR code; give a shorter link\n"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("command", ["rules", "dashboard"])
@pytest.mark.parametrize(("option", "value", "error"), [
    ("--window", "1e308", "--window: expected seconds in (0, 86400], got 1e+308"),
    ("--window", "nan", "--window: expected seconds in (0, 86400], got nan"),
    ("--alert-for", "-5", "--alert-for: expected seconds in (0, 86400], got -5"),
    ("--alert-for", "inf", "--alert-for: expected seconds in (0, 86400], got inf"),
])
def test_a_window_that_makes_no_sense_is_one_line_and_nothing_written(tmp_path, capsys, command, option, value, error):
    assert main([command, "--out", str(tmp_path / "out"), option, value]) == 2
    captured = capsys.readouterr()
    assert (captured.out, captured.err) == ("", f"golive {command}: {error}\n")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("value", "shown"), [("-1", "-1"), ("0", "0"), ("nan", "nan"), ("1e9", "1e+09")])
def test_a_history_that_makes_no_sense_is_one_line_and_nothing_written(tmp_path, capsys, value, shown):
    argv = ["dashboard", "--out", str(tmp_path / "board.json"), "--png", str(tmp_path / "p.png"), "--minutes", value]
    assert main(argv) == 2
    assert capsys.readouterr().err == f"golive dashboard: --minutes: expected minutes in (0, 10080], got {shown}\n"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("command", ["rules", "dashboard"])
@pytest.mark.parametrize("service", ['spark"} or vector(1) #', "spark\nFAIL", ""])
def test_a_service_given_on_the_command_line_is_checked_as_the_settings_check_it(tmp_path, capsys, command, service):
    assert main([command, "--out", str(tmp_path / "out"), "--service", service]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"golive {command}: --service: ") and err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


class _Prometheus(http.server.BaseHTTPRequestHandler):
    """A Prometheus that answers every query with the class's `answer` (bytes), or with one
    series of value 1 when it is None."""

    answer: bytes | None = None

    def do_GET(self):  # noqa: N802 (the standard library's name)
        body = self.answer
        if body is None:
            now = time.time()
            if self.path.startswith("/api/v1/query_range"):
                result = [{"metric": {"track": "canary"}, "values": [[now - 60, "1"], [now, "1"]]}]
            else:
                result = [{"metric": {}, "value": [now, "1"]}]
            body = json.dumps({"status": "success", "data": {"resultType": "vector", "result": result}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def prometheus():
    """The URL of a stand-in Prometheus, and a way to set what it answers."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), type("Answers", (_Prometheus,), {}))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()

    def answer(body: bytes | None) -> None:
        server.RequestHandlerClass.answer = body

    yield f"http://127.0.0.1:{server.server_address[1]}", answer
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("answer", [
    b"not json",
    b"[" * 100000 + b"]" * 100000,
    b'{"data": {"result": [{"metric": ["track"], "values": [[1, "2"]]}]}}',
    b'{"data": {"result": [{"metric": {}, "values": [{"t": 1}]}]}}',
    b'{"data": {"result": "all green"}}',
    b'{"data": null}',
])
def test_an_answer_from_prometheus_that_is_no_series_is_one_line_and_nothing_written(tmp_path, capsys, prometheus,
                                                                                    answer):
    url, answers = prometheus
    answers(answer)
    out, png = tmp_path / "board.json", tmp_path / "panels.png"
    assert main(["dashboard", "--out", str(out), "--png", str(png), "--prometheus", url, "--minutes", "1"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith(f"golive dashboard: --png: the panels could not be drawn from {url}: ")
    assert captured.err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


def test_the_panels_replace_a_link_at_the_png_path_instead_of_writing_through_it(tmp_path, capsys, prometheus):
    url, answers = prometheus
    answers(None)
    elsewhere = tmp_path / "elsewhere.txt"
    elsewhere.write_text("not golive's")
    png = tmp_path / "panels.png"
    png.symlink_to(elsewhere)
    assert main(["dashboard", "--out", str(tmp_path / "board.json"), "--png", str(png), "--prometheus", url,
                 "--minutes", "1"]) == 0
    assert not png.is_symlink() and png.read_bytes().startswith(b"\x89PNG")
    assert elsewhere.read_text() == "not golive's"
    assert capsys.readouterr().out.splitlines()[-1] == f"its panels drawn from {url}: {png}"


def test_a_prometheus_url_with_credentials_is_refused_without_repeating_them(tmp_path, capsys):
    argv = ["dashboard", "--out", str(tmp_path / "board.json"), "--png", str(tmp_path / "p.png"),
            "--prometheus", "http://admin:hunter2@127.0.0.1:9090"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err == "golive dashboard: --prometheus: credentials in the URL are refused: name a Secret block instead\n"
    assert list(tmp_path.iterdir()) == []


def test_the_card_replaces_links_in_its_folder_instead_of_writing_through_them(tmp_path, capsys):
    from golive import layout

    card = tmp_path / "card"
    card.mkdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    names = [layout.QUICK_START, layout.OPERATOR_CARD, layout.OPERATOR_CARD_HTML, layout.OPERATOR_CARD_QR_PNG]
    for name in names:
        (elsewhere / name).write_text("not golive's")
        (card / name).symlink_to(elsewhere / name)
    assert main(["card", "--release", "1.4.0", "--out", str(card)]) == 0
    assert all((elsewhere / name).read_text() == "not golive's" for name in names)
    assert not any((card / name).is_symlink() for name in names)
    assert (card / layout.OPERATOR_CARD).read_text().startswith("<img")
