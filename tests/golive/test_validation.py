"""A release is a SemVer 2.0 version: parsed, or refused in one line."""

from __future__ import annotations

import re

import pytest

from golive.validation import parse_release


SEMVER = "is not a SemVer 2.0 version (MAJOR.MINOR.PATCH[-pre][+build])"


@pytest.mark.parametrize("release", ["1.4.0", "0.0.0", "2.0.0-rc.1", "1.0.0-alpha.beta+exp.sha.5114f85"])
def test_semver_versions_parse_as_themselves(release):
    assert parse_release(release) == release


@pytest.mark.parametrize("release", ["v1.4.0", "1.4", "01.4.0", "1.4.0-", "1.4.0.1"])
def test_anything_else_is_refused_naming_the_input(release):
    with pytest.raises(ValueError, match=re.escape(SEMVER)):
        parse_release(release)


def test_the_canarys_version_answer_is_parsed_or_refused_in_one_line():
    assert parse_release("1.4.0\n") == "1.4.0"
    with pytest.raises(ValueError) as exc:
        parse_release('{"version": "1.4.0"}')
    assert str(exc.value) == f"'{{\"version\": \"1.4.0\"}}' {SEMVER}"
