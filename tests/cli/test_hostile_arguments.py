"""Arguments that make no sense are refused in one line, exit 2, before anything is written or
started; an argument given explicitly is the one used."""

from __future__ import annotations

import pytest
import yaml

from cli.main import _target_settings, build_parser, main
from sandbox.faults import FAULTS


@pytest.fixture
def config(tmp_path):
    path = tmp_path / "golive.yaml"
    path.write_text(yaml.safe_dump({"process": {"evidence_root": str(tmp_path / "from-file")}}))
    return path


@pytest.mark.parametrize(("option", "value", "error"), [
    ("--hours", "-3", "--hours: expected a whole number of hours from 1 to 168, got -3"),
    ("--hours", "0", "--hours: expected a whole number of hours from 1 to 168, got 0"),
    ("--hours", "100000", "--hours: expected a whole number of hours from 1 to 168, got 100000"),
    ("--hour-seconds", "0", "--hour-seconds: expected seconds in (0, 3600], got 0"),
    ("--hour-seconds", "-1.5", "--hour-seconds: expected seconds in (0, 3600], got -1.5"),
    ("--hour-seconds", "nan", "--hour-seconds: expected seconds in (0, 3600], got nan"),
    ("--hour-seconds", "inf", "--hour-seconds: expected seconds in (0, 3600], got inf"),
])
def test_first_night_refuses_a_night_of_no_hours_in_one_line(tmp_path, config, capsys, monkeypatch, option, value,
                                                             error):
    monkeypatch.chdir(tmp_path)
    assert main(["first-night", "--release", "1.4.0", "--config", str(config), option, value]) == 2
    captured = capsys.readouterr()
    assert (captured.out, captured.err) == ("", f"golive: {error}\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["golive.yaml"]


def _settings(*argv: str):
    args = build_parser().parse_args(["close", "--release", "1.4.0", *argv])
    return _target_settings(args, release=args.release)


def test_an_explicit_evidence_root_wins_over_the_files(tmp_path, config):
    assert _settings("--config", str(config), "--evidence-root", str(tmp_path / "given")).evidence_dir == (
        tmp_path / "given" / "v1.4.0")
    assert _settings("--config", str(config)).evidence_dir == tmp_path / "from-file" / "v1.4.0"


def test_an_explicit_evidence_root_keeps_the_other_process_overrides(tmp_path, config):
    args = build_parser().parse_args(["flight-check", "--config", str(config), "--evidence-root", str(tmp_path / "e")])
    settings = _target_settings(args, release="1.4.0", process={"blast_radius_seconds": 7.0})
    assert (settings.process.evidence_root, settings.process.blast_radius_seconds) == (str(tmp_path / "e"), 7.0)


@pytest.mark.parametrize(("argv", "error"), [
    (["server", "up", "--port", "70000"], "--port: expected a port from 1 to 65535, got 70000"),
    (["server", "up", "--port", "0"], "--port: expected a port from 1 to 65535, got 0"),
    (["server", "up", "--database", "postgress://golive:s3cret@db.example/prefect"],  # its password is not echoed
     "--database: expected sqlite, postgresql or a postgresql:// URL, got a 'postgress' URL"),
    (["server", "up", "--database", "postgres:/golive:s3cret@db.example/prefect?password=s3cret"],
     "--database: expected sqlite, postgresql or a postgresql:// URL, got something else"),
    (["rollback", "--release", "1.4.0", "--reason", "drill", "--stage", "-3", "--dry-run"],
     "--stage: expected shadow or the percentage the release was at, 1 to 100, got -3"),
    (["rollback", "--release", "1.4.0", "--reason", "drill", "--stage", "250", "--dry-run"],
     "--stage: expected shadow or the percentage the release was at, 1 to 100, got 250"),
    (["rollback", "--release", "1.4.0", "--reason", "drill", "--stage", "0", "--dry-run"],
     "--stage: expected shadow or the percentage the release was at, 1 to 100, got 0"),
])
def test_a_number_that_makes_no_sense_is_refused_before_anything_starts(tmp_path, capsys, monkeypatch, argv, error):
    from cli.stack import Stack

    def started(*args, **kwargs):
        raise AssertionError("a server was started")

    monkeypatch.setattr(Stack, "up", started)  # were the check missing, no server may be left running
    monkeypatch.chdir(tmp_path)
    assert main([*argv, "--config", str(tmp_path / "absent.yaml")] if argv[0] == "rollback" else argv) == 2
    captured = capsys.readouterr()
    assert (captured.out, captured.err) == ("", f"golive: {error}\n")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("option", "value", "error"), [
    ("--rate", "nan", "--rate: expected requests a second in (0, 1000], got nan"),
    ("--rate", "0", "--rate: expected requests a second in (0, 1000], got 0"),
    ("--rate", "5000", "--rate: expected requests a second in (0, 1000], got 5000"),
    ("--interval", "-1", "--interval: expected seconds in (0, 86400], got -1"),
    ("--stage-seconds", "inf", "--stage-seconds: expected seconds in (0, 86400], got inf"),
    ("--fault", "canary:nope=1", f"--fault: nope: unknown fault (known: {', '.join(FAULTS)})"),
    ("--fault", "canary:latency_ms=abc", "--fault: latency_ms: expected a number, got 'abc'"),
    ("--fault", "canary:error_rate=2", "--fault: error_rate: expected a number in [0, 1], got 2"),
    ("--pyroscope", "notaurl", "--pyroscope: expected an http:// or https:// URL with a host"),
    ("--evidence-root", "", "--evidence-root: String should have at least 1 character"),
])
def test_a_demo_of_timings_or_load_that_make_no_sense_is_refused_before_anything_starts(
        tmp_path, capsys, monkeypatch, option, value, error):
    import cli.demo

    def started(*args, **kwargs):
        raise AssertionError("the demo was started")

    monkeypatch.setattr(cli.demo, "run_demo", started)
    monkeypatch.chdir(tmp_path)
    assert main(["demo", option, value]) == 2
    captured = capsys.readouterr()
    assert (captured.out, captured.err) == ("", f"golive: {error}\n")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("content", [b"[[[", b"\xff\xfe", b"- a\n- b\n", b"just text", b""])
def test_a_file_that_is_no_kubeconfig_is_one_line_and_saves_nothing(tmp_path, capsys, monkeypatch, content):
    from blocks import KubernetesCluster

    def saved(*args, **kwargs):
        raise AssertionError("a block was saved")

    monkeypatch.setattr(KubernetesCluster, "save", saved)
    monkeypatch.setattr(KubernetesCluster, "register_type_and_schema", saved)
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path / "prefect"))
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_bytes(content)
    assert main(["blocks", "cluster", "prod", "--kubeconfig", str(kubeconfig)]) == 2
    assert capsys.readouterr().err == f"golive: --kubeconfig: {kubeconfig}: not a kubeconfig (a YAML mapping)\n"


@pytest.mark.parametrize("head", ["abc", "0" * 63 + "g", "0" * 64 + "\n" + "0" * 64])
def test_an_expected_head_that_is_no_digest_is_one_line(tmp_path, capsys, head):
    from golive.signing import generate_key

    _, public = generate_key(tmp_path / "keys")
    (tmp_path / "v1.4.0").mkdir()
    assert main(["evidence", "verify", str(tmp_path / "v1.4.0"), "--key", str(public), "--expect-head", head]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("golive: --expect-head: expected a sha256 digest (64 hex digits), got ")
    assert captured.err.count("\n") == 1


def test_a_path_given_on_the_command_line_is_echoed_on_one_line(tmp_path, capsys):
    from pathlib import Path

    folder = tmp_path / "x\nkey id:      forged"
    folder.mkdir()
    prefect_yaml = folder / "prefect.yaml"
    prefect_yaml.write_text((Path(__file__).resolve().parents[2] / "prefect.yaml").read_text())
    assert main(["deployment", "add", "9.9.9", "--file", str(prefect_yaml)]) == 0
    assert main(["keys", "init", "--dir", str(folder / "keys")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 4 and not any(line.startswith("key id:      forged") for line in lines)
    assert lines[0].startswith(f"added go-live/v9.9.9 to {tmp_path}/x\\nkey id:      forged/prefect.yaml; ")


def test_a_sandbox_that_cannot_start_for_the_demo_is_one_line_and_makes_no_key(tmp_path, capsys, monkeypatch):
    import cli.prefect_env
    from sandbox.control import Sandbox, SandboxError

    class NoServer:
        stopped = False

        def ready(self):
            raise AssertionError("the server was waited for though the sandbox did not start")

        def stop(self):
            NoServer.stopped = True

    def refused(*args, **kwargs):
        raise SandboxError("a sandbox already runs in /tmp/golive-sandbox-demo; stop it with `golive sandbox down`")

    monkeypatch.setattr(cli.prefect_env, "start_a_server_of_its_own", NoServer)
    monkeypatch.setattr(Sandbox, "up", refused)
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path / "prefect-home"))  # the demo's own is set only if unset
    monkeypatch.setenv("PREFECT_LOGGING_LEVEL", "WARNING")  # as the demo sets it; put back after
    monkeypatch.chdir(tmp_path)
    assert main(["demo"]) == 1
    assert capsys.readouterr().err == ("golive demo: a sandbox already runs in /tmp/golive-sandbox-demo; "
                                       "stop it with `golive sandbox down`\n")
    assert not (tmp_path / ".golive").exists()  # no signing key made for a demo that never ran


TOO_LONG = "x" * 300  # a file name longer than the system's 255 bytes: its calls raise, they do not answer False


@pytest.mark.parametrize(("argv", "error"), [
    (["keys", "init", "--dir", TOO_LONG], f"golive: --dir {TOO_LONG[:120]}: File name too long"),
    # a missing parent is not made: a typo would make a tree
    (["keys", "init", "--dir", "missing/keys"], "golive: --dir missing/keys: missing does not exist"),
    (["rules", "--out", TOO_LONG], f"golive rules: --out {TOO_LONG[:120]}: File name too long"),
    (["card", "--release", "1.4.0", "--out", TOO_LONG], f"golive: --out {TOO_LONG[:120]}: File name too long"),
    (["budget", "status", "--evidence-root", TOO_LONG],
     "golive budget status: freeze.json: File name too long; the freeze cannot be known"),
    (["budget", "override", "--release", "1.5.0", "--who", "me", "--why", "x", "--evidence-root", TOO_LONG],
     f"golive budget override: {TOO_LONG}/error-budget: File name too long"),
    (["attest", "--project", TOO_LONG], f"golive: --project: {TOO_LONG[:120]}: File name too long"),
])
def test_a_path_the_system_refuses_is_one_line_and_nothing_written(tmp_path, capsys, monkeypatch, argv, error):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    assert capsys.readouterr() == ("", f"{error}\n")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("argv", "error"), [
    (["approve", "not-a-uuid", "--approver", "me"], "run_id: expected a flow run's id (a UUID), got 'not-a-uuid'"),
    (["rollback", "--release", "1.4.0", "--reason", "x", "--config", "bad.yaml"],
     "policy.stages: Input should be a valid tuple"),
    (["go-live", "--release", "1.4.0", "--config", "bad.yaml"], "policy.stages: Input should be a valid tuple"),
])
def test_a_command_for_prefect_refuses_its_input_before_making_prefects_home(tmp_path, capsys, monkeypatch, argv,
                                                                               error):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bad.yaml").write_text("policy: {stages: 5}\n")
    assert main(argv) == 2
    assert capsys.readouterr().err.startswith(f"golive: {error}")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.yaml"]  # no .golive/prefect


def test_the_flight_checks_drill_length_is_named_as_its_option(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "golive.yaml").write_text("policy: {}\n")
    assert main(["flight-check", "--release", "1.4.0", "--config", "golive.yaml", "--blast-radius-seconds", "-1"]) == 2
    assert capsys.readouterr().err == "golive: --blast-radius-seconds: Input should be greater than 0\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["golive.yaml"]


def test_a_reader_that_goes_away_ends_the_command_quietly(tmp_path):
    """`golive signals list | head -1`: no BrokenPipeError traceback, the shell's 141."""
    import subprocess
    import sys
    from pathlib import Path

    golive = Path(sys.executable).with_name("golive")
    listing = subprocess.Popen([str(golive), "signals", "list"], cwd=tmp_path, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)
    listing.stdout.close()  # before it writes a line
    said = listing.stderr.read()
    assert listing.wait(timeout=60) == 141 and said == b""
