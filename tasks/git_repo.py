"""The release's source repository, through the git binary: its state, and (at closing) the tag."""

from __future__ import annotations

import hashlib
import subprocess

from prefect import task
from prefect.cache_policies import NO_CACHE

from golive.models import GitState
from golive.validation import without_credentials


class GitError(RuntimeError):
    """git refused; the message holds git's own words."""


def _git(repo: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    try:
        done = subprocess.run(["git", "-C", repo, *args], capture_output=True, text=True, timeout=60)
    except FileNotFoundError:
        raise GitError("git is not installed") from None
    except subprocess.TimeoutExpired:
        raise GitError(f"git {args[0]} in {repo} did not finish within 60 s") from None
    if check and done.returncode != 0:
        raise GitError(f"git {' '.join(args[:2])} in {repo}: {done.stderr.strip() or done.stdout.strip()}")
    return done


@task(name="read the release's git state", retries=1, retry_delay_seconds=1, cache_policy=NO_CACHE)
def read_git_state(repo: str, release: str, remote: str = "origin") -> GitState:
    """Commit, branch, uncommitted files, and whether tag `v<release>` exists here and on `remote`."""
    _git(repo, "rev-parse", "--is-inside-work-tree")
    tag = f"v{release}"
    commit = _git(repo, "rev-parse", "HEAD", check=False).stdout.strip() or None
    branch = _git(repo, "rev-parse", "--abbrev-ref", "HEAD", check=False).stdout.strip() or None
    dirty = [line[3:] for line in _git(repo, "status", "--porcelain").stdout.splitlines() if line.strip()]
    tag_local = _git(repo, "rev-parse", "-q", "--verify", f"refs/tags/{tag}", check=False).returncode == 0
    url = _git(repo, "remote", "get-url", remote, check=False).stdout.strip() or None
    tag_remote = None
    if url:
        listed = _git(repo, "ls-remote", "--tags", remote, f"refs/tags/{tag}")
        tag_remote = bool(listed.stdout.strip())
    # A token in the remote's URL must not reach the preflight record or the provenance.
    return GitState(repo=repo, commit=commit, branch=branch, remote_url=url and without_credentials(url), dirty=dirty,
                    tag=tag, tag_local=tag_local, tag_remote=tag_remote)


@task(name="digest the source tree", cache_policy=NO_CACHE)
def source_tree_digest(repo: str, commit: str) -> str:
    """sha256 of `git archive --format=tar <commit>`: the same bytes for the same commit."""
    try:
        done = subprocess.run(["git", "-C", repo, "archive", "--format=tar", commit], capture_output=True, timeout=120)
    except subprocess.TimeoutExpired:
        raise GitError(f"git archive in {repo} did not finish within 120 s") from None
    if done.returncode != 0:
        raise GitError(f"git archive {commit} in {repo}: {done.stderr.decode(errors='replace').strip()}")
    return hashlib.sha256(done.stdout).hexdigest()


@task(name="tag the release and push the tag", cache_policy=NO_CACHE)
def tag_release(repo: str, release: str, message: str, remote: str = "origin", dry_run: bool = False) -> dict:
    """Annotated tag `v<release>` at HEAD, pushed to `remote`. A tag that exists here or there
    is an error: golive never moves a tag and never force-pushes."""
    tag = f"v{release}"
    commit = _git(repo, "rev-parse", "HEAD").stdout.strip()
    if _git(repo, "rev-parse", "-q", "--verify", f"refs/tags/{tag}", check=False).returncode == 0:
        raise GitError(f"tag {tag} already exists in {repo}; golive never moves a tag")
    url = _git(repo, "remote", "get-url", remote, check=False).stdout.strip() or None
    if url and _git(repo, "ls-remote", "--tags", remote, f"refs/tags/{tag}").stdout.strip():
        raise GitError(f"tag {tag} already exists on {remote}; golive never force-pushes")
    result = {"tag": tag, "commit": commit, "message": message, "remote": remote if url else None, "dry_run": dry_run}
    if dry_run:
        return result
    has_identity = bool(_git(repo, "config", "user.email", check=False).stdout.strip())
    identity = [] if has_identity else ["-c", "user.name=golive", "-c", "user.email=golive@localhost"]
    _git(repo, *identity, "tag", "-a", tag, "-m", message)
    if url:
        _git(repo, "push", remote, f"refs/tags/{tag}")
    return result
