"""The demo release's source: a real git work tree with a bare repository as its `origin`.

Two commits, `spark <stable>` (tagged `v<stable>`) and `spark <release>` (not tagged yet: the
go-live tags it), so the preflight's "tree clean, tag absent" and the closing's tag-and-push
run against real git, with no network.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

__all__ = ["create_release_repo"]

_IDENTITY = ["-c", "user.name=spark release bot", "-c", "user.email=release@spark.invalid"]


def _git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", *_IDENTITY, *args], cwd=cwd, check=True, capture_output=True, timeout=30)


def create_release_repo(workdir: Path, release: str, stable_version: str) -> Path:
    """(Re)create `workdir/spark` (work tree) and `workdir/spark.git` (its origin); returns the work tree."""
    tree, origin = workdir / "spark", workdir / "spark.git"
    for path in (tree, origin):
        shutil.rmtree(path, ignore_errors=True)
    tree.mkdir(parents=True)
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(origin)], check=True, capture_output=True)
    _git(tree, "init", "-q", "-b", "main")
    _git(tree, "remote", "add", "origin", str(origin))
    source = Path(__file__).with_name("service.py").read_text()
    for version in (stable_version, release):
        (tree / "VERSION").write_text(version + "\n")
        (tree / "service.py").write_text(source)
        _git(tree, "add", "VERSION", "service.py")
        _git(tree, "commit", "-q", "-m", f"spark {version}")
        if version == stable_version:
            _git(tree, "tag", "-a", f"v{version}", "-m", f"spark {version}")
    _git(tree, "push", "-q", "origin", "main", "--tags")
    return tree
