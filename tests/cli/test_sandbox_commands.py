"""`golive sandbox up` refuses a version that is not one before anything starts."""

from __future__ import annotations

import pytest

from cli.main import main


@pytest.mark.parametrize(("option", "value"), [("--release", "1/../../escaped"), ("--release", "v1.4.0"),
                                               ("--stable", "1.3")])
def test_sandbox_up_refuses_a_version_that_is_not_semver(option, value, tmp_path, capsys):
    workdir = tmp_path / "sandbox"
    with pytest.raises(SystemExit) as exited:
        main(["sandbox", "--workdir", str(workdir), "up", option, value])
    assert exited.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        f"golive sandbox up: error: argument {option}: {value!r} is not a SemVer 2.0 version "
        "(MAJOR.MINOR.PATCH[-pre][+build])")
    assert not workdir.exists()


def test_the_sandbox_config_is_the_four_sections_of_the_settings(tmp_path):
    import json

    from cli.sandbox_commands import sandbox_config
    from golive.settings import SECTIONS, load_settings
    from sandbox.configs import Ports
    from sandbox.control import Sandbox

    workdir = tmp_path / "sandbox"
    workdir.mkdir()
    (workdir / "config.json").write_text(json.dumps({"ports": Ports.from_base(28080).as_dict()}))
    config = sandbox_config(Sandbox(workdir), stage_seconds=12, interval=4)
    assert tuple(config) == SECTIONS
    settings = load_settings(config, release="1.4.0")
    assert (settings.prometheus.url, settings.target.router.control_url) == ("http://127.0.0.1:29090",
                                                                              "http://127.0.0.1:28070")
    assert (settings.policy.dwell_seconds, settings.policy.interval_seconds) == (12, 4)
    assert settings.process.git.repo == str(workdir / "spark") and settings.process.first_night.hours == 3


@pytest.mark.parametrize(("argv", "error"), [
    (["up", "--port-base", "70000"], "--port-base: expected a port from 1034 to 64522 (the sandbox's ports run from it "
                                     "- 10 to it + 1013), got 70000"),
    (["up", "--port-base", "-5"], "--port-base: expected a port from 1034 to 64522 (the sandbox's ports run from it "
                                  "- 10 to it + 1013), got -5"),
    (["up", "--rate", "nan"], "--rate: expected requests a second in [0, 1000], got nan"),
    (["up", "--rate", "-5"], "--rate: expected requests a second in [0, 1000], got -5"),
    (["up", "--probe-rate", "inf"], "--probe-rate: expected probes a second per track in [0, 100], got inf"),
    (["up", "--timeout", "-1"], "--timeout: expected seconds in (0, 3600], got -1"),
    (["up", "--stage-seconds", "nan"], "--stage-seconds: expected seconds in (0, 86400], got nan"),
    (["config", "--interval", "0"], "--interval: expected seconds in (0, 86400], got 0"),
    (["config", "--interval", "-4", "--stage-seconds", "-30"],
     "--stage-seconds: expected seconds in (0, 86400], got -30"),
    (["up", "--interval", "5"], "--stage-seconds: at least three intervals (--interval) per stage"),
])
def test_a_number_that_makes_no_sense_is_one_line_and_nothing_starts(tmp_path, capsys, monkeypatch, argv, error):
    from sandbox.control import Sandbox

    def started(*args, **kwargs):
        raise AssertionError("a sandbox was started")

    monkeypatch.setattr(Sandbox, "up", started)  # were the check missing, this test must not leave one running
    monkeypatch.chdir(tmp_path)
    workdir = tmp_path / "sandbox"
    assert main(["sandbox", "--workdir", str(workdir), *argv]) == 2
    captured = capsys.readouterr()
    assert (captured.out, captured.err) == ("", f"golive sandbox: {error}\n")
    assert list(tmp_path.iterdir()) == []


def _sandbox_with_config(tmp_path):
    import json

    from sandbox.configs import Ports
    from sandbox.control import Sandbox

    workdir = tmp_path / "sandbox"
    workdir.mkdir()
    (workdir / "config.json").write_text(json.dumps({"ports": Ports.from_base(28080).as_dict()}))
    return Sandbox(workdir)


@pytest.mark.parametrize("overwrite", [False, True])
def test_the_settings_file_replaces_a_link_instead_of_writing_through_it(tmp_path, overwrite):
    import argparse

    from cli.sandbox_commands import CONFIG_MARK, _write_config

    elsewhere = tmp_path / "elsewhere.yaml"
    elsewhere.write_text(f"{CONFIG_MARK} a file the link points at\n")
    link = tmp_path / "golive.yaml"
    link.symlink_to(elsewhere)
    said = _write_config(_sandbox_with_config(tmp_path), argparse.Namespace(stage_seconds=12.0, interval=4.0), link,
                         overwrite=overwrite)
    assert elsewhere.read_text() == f"{CONFIG_MARK} a file the link points at\n"
    if overwrite:
        assert said.startswith(f"wrote {link}") and not link.is_symlink()
        assert link.read_text().startswith(CONFIG_MARK)
    else:
        assert said == (f"{link} exists and is not the sandbox's: left alone "
                        "(`golive sandbox config --out FILE` writes one)")
        assert link.is_symlink()


@pytest.mark.parametrize("action", ["status", "down", "config"])
def test_a_workdir_that_is_a_file_is_one_line(tmp_path, capsys, action):
    (tmp_path / "a-file").write_text("x")
    assert main(["sandbox", "--workdir", str(tmp_path / "a-file"), action]) == 2
    assert capsys.readouterr() == ("", f"golive sandbox: --workdir {tmp_path / 'a-file'}: not a folder\n")
