"""The release's source repository, through the git binary: its state, and (at closing) the tag."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

from prefect import task
from prefect.cache_policies import NO_CACHE

from golive.models import GitState
from golive.validation import without_credentials, without_credentials_in


class GitError(RuntimeError):
    """git refused; the message holds git's own words, with no credentials from a remote's URL."""

    def __init__(self, message: str):
        super().__init__(without_credentials_in(message))


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


def _tag_commit(repo: str, tag: str) -> str | None:
    """The commit the local tag `tag` points at; None when there is no such tag."""
    found = _git(repo, "rev-parse", "-q", "--verify", f"refs/tags/{tag}^{{commit}}", check=False)
    return found.stdout.strip() if found.returncode == 0 else None


def _remote_tag_commit(repo: str, remote: str, tag: str) -> str | None:
    """The commit `remote`'s tag `tag` points at (an annotated tag peeled); None when absent."""
    listed = _git(repo, "ls-remote", "--tags", remote, f"refs/tags/{tag}", f"refs/tags/{tag}^{{}}").stdout
    refs = dict(reversed(line.split("\t", 1)) for line in listed.splitlines() if "\t" in line)
    return refs.get(f"refs/tags/{tag}^{{}}") or refs.get(f"refs/tags/{tag}")


@task(name="tag the release and push the tag", cache_policy=NO_CACHE)
def tag_release(repo: str, release: str, message: str, remote: str = "origin", dry_run: bool = False) -> dict:
    """Annotated tag `v<release>` at HEAD, pushed to `remote`; golive never moves a tag and never
    force-pushes. A re-run finishes what an earlier one left: a local tag at HEAD with the same
    message is pushed as it is, and a remote tag at HEAD is already pushed. A tag, here or there,
    at another commit (or here with another message) is a GitError naming both.

    Returns:
        tag, commit, message, remote (None without one), dry_run, and `done`: what this call did
        ("tagged and pushed", "pushed the existing tag", "already pushed", "tagged" without a
        remote, "would …" in a dry run).
    """
    tag = f"v{release}"
    commit = _git(repo, "rev-parse", "HEAD").stdout.strip()
    local = _tag_commit(repo, tag)
    if local is not None and local != commit:
        raise GitError(f"tag {tag} in {repo} is at {local[:12]}, not at the release's commit {commit[:12]}; "
                       f"golive never moves a tag")
    if local is not None:
        existing = _git(repo, "for-each-ref", "--format=%(contents)", f"refs/tags/{tag}").stdout.strip()
        if existing != message.strip():
            raise GitError(f"tag {tag} in {repo} is at {commit[:12]} but reads {existing.splitlines()[0]!r}, "
                           f"not {message.strip().splitlines()[0]!r}; golive never moves a tag")
    url = _git(repo, "remote", "get-url", remote, check=False).stdout.strip() or None
    pushed = _remote_tag_commit(repo, remote, tag) if url else None
    if pushed is not None and pushed != commit:
        raise GitError(f"tag {tag} on {remote} is at {pushed[:12]}, not at the release's commit {commit[:12]}; "
                       f"golive never force-pushes")
    if pushed is not None:
        done = ("already pushed", "already pushed")
    elif local is not None:
        done = ("pushed the existing tag", "would push the existing tag") if url else ("already tagged", "already tagged")
    else:
        done = ("tagged and pushed", "would tag and push") if url else ("tagged", "would tag")
    result = {"tag": tag, "commit": commit, "message": message, "remote": remote if url else None,
              "dry_run": dry_run, "done": done[dry_run]}
    if dry_run:
        return result
    if local is None:
        has_identity = bool(_git(repo, "config", "user.email", check=False).stdout.strip())
        identity = [] if has_identity else ["-c", "user.name=golive", "-c", "user.email=golive@localhost"]
        _git(repo, *identity, "tag", "-a", tag, "-m", message, commit)
    if url and pushed is None:
        _git(repo, "push", remote, f"refs/tags/{tag}")
    return result


@task(name="read a file of the release's repository", cache_policy=NO_CACHE)
def read_repo_file(repo: str, path: str) -> str | None:
    """The text of `path` in the release's work tree; None when it has no such file."""
    target = Path(repo) / path
    return target.read_text(encoding="utf-8") if target.is_file() else None
