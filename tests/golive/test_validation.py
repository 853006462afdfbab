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


def test_redacted_masks_url_credentials_and_values_under_secret_keys_only():
    from golive.validation import redacted

    settings = {
        "prometheus": {"url": "https://prometheus.internal:9090", "auth_secret_block": "prom-auth"},
        "github": {"token_env": "GITHUB_TOKEN", "credentials_block": None, "token": "ghp_SECRET"},
        "signing": {"secret_block": "signing-pem", "key_path": "k.pem", "passphrase": "SECRET"},
        "headers": {"Authorization": "Bearer SECRET", "apiKey": "SECRET", "x_api_key": "SECRET"},
        "notes": ["from https://user:SECRET@git.example/repo.git, not git@github.com:o/r.git"],
        "password": None,
    }
    shown = redacted(settings)
    assert "SECRET" not in repr(shown)
    assert shown["prometheus"]["auth_secret_block"] == "prom-auth"  # where a secret lives is not a secret
    assert shown["github"] == {"token_env": "GITHUB_TOKEN", "credentials_block": None, "token": "***"}
    assert shown["signing"] == {"secret_block": "signing-pem", "key_path": "k.pem", "passphrase": "***"}
    assert set(shown["headers"].values()) == {"***"}
    assert shown["notes"] == ["from https://***@git.example/repo.git, not git@github.com:o/r.git"]
    assert shown["password"] is None
    assert settings["github"]["token"] == "ghp_SECRET"  # a copy


def test_a_key_names_a_secret_in_the_plural_and_by_its_common_short_names_too():
    from golive.validation import names_a_secret

    for key in ("tokens", "api_keys", "apiKeys", "passwords", "secrets", "jwt", "sessionId", "cookies", "passwd",
                "pwd", "otp_code", "credentials"):
        assert names_a_secret(key), key
    for key in ("credentials_block", "token_env", "keys", "session", "tokenizer", "stopwords", "monkey"):
        assert not names_a_secret(key), key


def test_credentials_are_taken_out_of_every_url_a_message_quotes():
    from golive.validation import without_credentials_in

    said = "fatal: unable to access 'https://x-access-token:p@ss@github.com/o/r.git/': 403; see http://h/?a=b@c"
    assert without_credentials_in(said) == "fatal: unable to access 'https://github.com/o/r.git/': 403; see http://h/?a=b@c"


def test_an_output_path_is_checked_before_anything_is_written(tmp_path):
    from golive.validation import check_output_path

    (tmp_path / "folder").mkdir()
    (tmp_path / "file").write_text("x")
    assert check_output_path(tmp_path / "new.yml") == tmp_path / "new.yml"
    assert check_output_path(tmp_path / "folder", folder=True) == tmp_path / "folder"
    for path, folder, reason in [(tmp_path / "folder", False, "a folder; name a file to write"),
                                 (tmp_path / "file", True, "not a folder"),
                                 (tmp_path / "no" / "x", False, f"{tmp_path / 'no'} does not exist"),
                                 (tmp_path / "file" / "x", False, f"{tmp_path / 'file'} is not a folder"),
                                 (tmp_path / "a\nb" / "x", False, f"{tmp_path}/a\\nb does not exist")]:
        with pytest.raises(ValueError) as exc:
            check_output_path(path, folder=folder)
        assert str(exc.value).endswith(reason) and "\n" not in str(exc.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file", "folder"]


def test_a_file_written_whole_replaces_a_link_instead_of_writing_through_it(tmp_path):
    from golive.validation import write_whole

    elsewhere = tmp_path / "elsewhere"
    elsewhere.write_text("not ours")
    (tmp_path / "out.yml").symlink_to(elsewhere)
    write_whole(tmp_path / "out.yml", "written\n", mode=0o600)
    assert not (tmp_path / "out.yml").is_symlink() and (tmp_path / "out.yml").read_text() == "written\n"
    assert (tmp_path / "out.yml").stat().st_mode & 0o777 == 0o600
    assert elsewhere.read_text() == "not ours"


def test_a_file_that_cannot_be_written_whole_leaves_nothing_behind(tmp_path):
    from golive.validation import write_whole

    (tmp_path / "taken").mkdir()
    with pytest.raises(OSError):
        write_whole(tmp_path / "taken", b"bytes")  # a folder is not replaced by a file
    assert [p.name for p in tmp_path.iterdir()] == ["taken"] and not any((tmp_path / "taken").iterdir())
