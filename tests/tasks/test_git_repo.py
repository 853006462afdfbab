"""The release's git state never records a credential held in the remote's URL."""

from __future__ import annotations

import subprocess

import pytest

import tasks.git_repo
from golive.validation import without_credentials
from tasks.git_repo import read_git_state


@pytest.mark.parametrize(("url", "recorded"), [
    ("https://x-access-token:ghs_SECRET@github.com/spark/trading.git", "https://github.com/spark/trading.git"),
    ("https://ghp_SECRET@github.com/spark/trading", "https://github.com/spark/trading"),
    ("ssh://git:SECRET@git.example:2222/trading.git", "ssh://git.example:2222/trading.git"),
    ("git@github.com:spark/trading.git", "git@github.com:spark/trading.git"),
    ("/srv/git/trading.git", "/srv/git/trading.git"),
])
def test_credentials_are_taken_out_of_a_url(url, recorded):
    assert without_credentials(url) == recorded


def test_a_token_in_the_remote_url_is_not_recorded(tmp_path, monkeypatch):
    real_git = tasks.git_repo._git
    token_url = "https://x-access-token:ghs_SECRET@github.com/spark/trading.git"

    def git(repo, *args, check=True):
        if args[:2] == ("remote", "get-url"):
            return subprocess.CompletedProcess(args, 0, token_url + "\n", "")
        if args[0] == "ls-remote":
            return subprocess.CompletedProcess(args, 0, "", "")
        return real_git(repo, *args, check=check)

    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    monkeypatch.setattr(tasks.git_repo, "_git", git)
    state = read_git_state.fn(str(tmp_path), "1.4.0")
    assert state.remote_url == "https://github.com/spark/trading.git"
    assert "SECRET" not in state.model_dump_json()


def test_a_git_error_does_not_repeat_a_token_in_a_remote_url(tmp_path, monkeypatch):
    monkeypatch.setenv("GIT_TERMINAL_PROMPT", "0")
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    token_url = "https://x-access-token:ghs_SECRET@127.0.0.1:9/spark/trading.git"
    with pytest.raises(tasks.git_repo.GitError) as failed:
        tasks.git_repo._git(str(tmp_path), "push", token_url, "refs/tags/v1.4.0")
    assert str(failed.value).startswith("git push https://127.0.0.1:9/spark/trading.git in ")
    assert "SECRET" not in str(failed.value)
