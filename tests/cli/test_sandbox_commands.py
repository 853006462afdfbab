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
