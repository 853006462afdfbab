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
