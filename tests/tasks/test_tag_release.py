"""The closing's tag on real repositories: a push that failed is finished on re-run, a tag is never moved."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from sandbox.release_repo import create_release_repo
from tasks.git_repo import GitError, tag_release

MESSAGE = "Canary successful: 8/8 signals pass"
IDENTITY = ["-c", "user.name=t", "-c", "user.email=t@t.invalid"]


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *IDENTITY, "-C", str(cwd), *args], check=True, capture_output=True,
                          text=True).stdout.strip()


def _remote_tag(origin: Path, tag: str = "v1.4.0") -> str | None:
    shown = subprocess.run(["git", "-C", str(origin), "rev-parse", "-q", "--verify", f"refs/tags/{tag}^{{commit}}"],
                           capture_output=True, text=True)
    return shown.stdout.strip() or None


@pytest.fixture
def repo(tmp_path) -> Path:
    return create_release_repo(tmp_path, "1.4.0", "1.3.2")


def _reject_next_push(origin: Path) -> None:
    """A pre-receive hook that turns away one push, as a flaky remote would."""
    hook = origin / "hooks" / "pre-receive"
    (origin / "reject-once").touch()
    hook.write_text('#!/bin/sh\nif [ -e reject-once ]; then rm reject-once; echo "remote busy" >&2; exit 1; fi\n')
    hook.chmod(0o755)


def test_a_failed_push_is_finished_on_rerun_at_the_same_commit(repo):
    origin = repo.with_name("spark.git")
    head = _git(repo, "rev-parse", "HEAD")
    _reject_next_push(origin)
    with pytest.raises(GitError, match="remote busy"):
        tag_release.fn(str(repo), "1.4.0", MESSAGE)
    assert _git(repo, "rev-parse", "v1.4.0^{commit}") == head and _remote_tag(origin) is None

    again = tag_release.fn(str(repo), "1.4.0", MESSAGE)
    assert again["done"] == "pushed the existing tag" and again["commit"] == head
    assert _remote_tag(origin) == head
    assert tag_release.fn(str(repo), "1.4.0", MESSAGE)["done"] == "already pushed"


def test_an_unreachable_remote_then_a_rerun_tags_and_pushes(repo):
    origin = repo.with_name("spark.git")
    hidden = origin.rename(origin.with_name("away.git"))
    with pytest.raises(GitError):
        tag_release.fn(str(repo), "1.4.0", MESSAGE)
    hidden.rename(origin)
    assert tag_release.fn(str(repo), "1.4.0", MESSAGE)["done"] in {"tagged and pushed", "pushed the existing tag"}
    assert _remote_tag(origin) == _git(repo, "rev-parse", "HEAD")


def test_a_first_run_tags_and_pushes_and_a_dry_run_says_what_it_would_do(repo):
    assert tag_release.fn(str(repo), "1.4.0", MESSAGE, dry_run=True)["done"] == "would tag and push"
    assert _remote_tag(repo.with_name("spark.git")) is None
    done = tag_release.fn(str(repo), "1.4.0", MESSAGE)
    assert done["done"] == "tagged and pushed" and _remote_tag(repo.with_name("spark.git")) == done["commit"]
    assert _git(repo, "tag", "-l", "--format=%(contents:subject)", "v1.4.0") == MESSAGE


def test_a_local_tag_at_another_commit_is_refused_naming_both(repo):
    previous = _git(repo, "rev-parse", "HEAD~1")
    head = _git(repo, "rev-parse", "HEAD")
    _git(repo, "tag", "-a", "v1.4.0", "-m", MESSAGE, previous)
    with pytest.raises(GitError, match=f"at {previous[:12]}, not at the release's commit {head[:12]}"):
        tag_release.fn(str(repo), "1.4.0", MESSAGE)
    assert _git(repo, "rev-parse", "v1.4.0^{commit}") == previous  # never moved
    assert _remote_tag(repo.with_name("spark.git")) is None


def test_a_local_tag_with_another_message_is_refused(repo):
    _git(repo, "tag", "-a", "v1.4.0", "-m", "something else")
    with pytest.raises(GitError, match="reads 'something else'"):
        tag_release.fn(str(repo), "1.4.0", MESSAGE)


def test_a_remote_tag_at_another_commit_is_refused_naming_both(repo):
    origin = repo.with_name("spark.git")
    previous = _git(repo, "rev-parse", "HEAD~1")
    _git(origin, "tag", "-a", "v1.4.0", "-m", MESSAGE, previous)
    with pytest.raises(GitError, match=f"on origin is at {previous[:12]}, not at the release's commit"):
        tag_release.fn(str(repo), "1.4.0", MESSAGE)
    assert _remote_tag(origin) == previous
    assert subprocess.run(["git", "-C", str(repo), "rev-parse", "-q", "--verify", "refs/tags/v1.4.0"],
                          capture_output=True).returncode != 0  # nothing tagged here either


def test_a_remote_tag_at_the_same_commit_is_already_pushed(repo):
    origin = repo.with_name("spark.git")
    head = _git(repo, "rev-parse", "HEAD")
    _git(origin, "tag", "-a", "v1.4.0", "-m", MESSAGE, head)
    assert tag_release.fn(str(repo), "1.4.0", MESSAGE)["done"] == "already pushed"
    assert _remote_tag(origin) == head
