"""The evidence folder of a release: files written whole or not at all, and a manifest that is a
hash chain: each flow appends a link, so an edit or a deletion anywhere earlier shows."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import socket
import stat
import tempfile
import time
from datetime import datetime, timezone
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from golive import layout
from golive.signing import SigningKey

__all__ = [
    "LINK_PAYLOAD_TYPE", "MANIFEST", "MANIFEST_LOCK", "EvidenceLedger", "EvidenceLockError", "latest_hashes",
    "link_head", "sha256_file",
]

MANIFEST = layout.MANIFEST
MANIFEST_LOCK = ".manifest.lock"
LINK_PAYLOAD_TYPE = "application/vnd.golive.evidence-link+sha256"
# A write in progress: `.<name>.<random>.partial` beside its target, renamed over it when whole.
_TEMP_SUFFIX = ".partial"
_TEMP_NAME = re.compile(r"^\..+\.[A-Za-z0-9_]{8}\.partial$")
# A seal takes seconds; a lock this old outlived its holder even where its pid cannot be checked.
STALE_LOCK_SECONDS = 600.0


class EvidenceLockError(RuntimeError):
    """The manifest is being sealed by another writer for longer than a seal may take."""


def _is_scratch(relative: str) -> bool:
    """The ledger's own lock and in-progress files, which are never evidence."""
    name = relative.rsplit("/", 1)[-1]
    return relative == MANIFEST_LOCK or bool(_TEMP_NAME.match(name))


def _fsync_folder(folder: Path) -> None:
    """Make a rename in `folder` durable: the new name lives in the folder's own blocks."""
    fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno not in (errno.EINVAL, errno.ENOTSUP):  # file systems that cannot sync a folder
            raise
    finally:
        os.close(fd)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 16), b""):
            digest.update(block)
    return digest.hexdigest()


class EvidenceLedger:
    """`evidence/v<release>/`: every write goes through a temporary file and a rename, so a
    process that dies mid-write leaves the previous file or none, never half of one."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)

    def path(self, name: str) -> Path:
        target = (self.folder / name).resolve()
        if self.folder.resolve() not in target.parents:
            raise ValueError(f"{name}: evidence names stay inside the release folder")
        return target

    def write_bytes(self, name: str, data: bytes) -> Path:
        target = self.path(name)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=_TEMP_SUFFIX)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        _fsync_folder(target.parent)
        return target

    def write_text(self, name: str, text: str) -> Path:
        return self.write_bytes(name, text.encode("utf-8"))

    def write_json(self, name: str, data: Any) -> Path:
        return self.write_text(name, json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")

    def read_json(self, name: str) -> Any:
        return json.loads(self.path(name).read_text())

    def files(self) -> list[str]:
        """Evidence files (relative names): every regular file at any depth, dotfiles included,
        except the manifest itself and the ledger's lock and in-progress files."""
        return self.survey()[0]

    def survey(self) -> tuple[list[str], list[str]]:
        """(evidence files, entries that cannot be evidence: symbolic links and special files).

        Links are never followed: a link could point a verified name at a file outside the folder.
        """
        files: list[str] = []
        refused: list[str] = []
        if not self.folder.is_dir():
            return files, refused
        for root, dirs, names in os.walk(self.folder, followlinks=False):
            here = Path(root)
            for name in [*dirs, *names]:
                path = here / name
                relative = path.relative_to(self.folder).as_posix()
                mode = path.lstat().st_mode
                if stat.S_ISLNK(mode):
                    refused.append(relative)
                elif stat.S_ISDIR(mode):
                    continue
                elif not stat.S_ISREG(mode):
                    refused.append(relative)
                elif relative != MANIFEST and not _is_scratch(relative):
                    files.append(relative)
        return sorted(files), sorted(refused)

    def seal(self, flow: str, signer: SigningKey | None = None, at: str | None = None) -> dict:
        """Append a link to the manifest's hash chain: the sha256 of every file new or changed
        since the last link, the previous link's head, and (with a key) a signature over the head.
        Serialised by a lock file, so flows sealing one folder one after another never lose a link."""
        self.folder.mkdir(parents=True, exist_ok=True)
        with self._locked():
            chain = self.chain()
            known = latest_hashes(chain)
            current = {name: sha256_file(self.folder / name) for name in self.files()}
            link = {
                "seq": len(chain) + 1,
                "flow": flow,
                "sealed_at": at or datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "files": {name: digest for name, digest in current.items() if known.get(name) != digest},
                "previous": chain[-1]["head"] if chain else None,
            }
            link["head"] = link_head(link)
            if signer is not None:
                link["signature"] = signer.envelope(link["head"].encode(), LINK_PAYLOAD_TYPE)["signatures"][0]
            self.write_json(MANIFEST, {"algorithm": "sha256", "chain": [*chain, link]})
        return link

    @contextmanager
    def _locked(self, wait_seconds: float = 120.0):
        """Hold `.manifest.lock`, created with O_CREAT|O_EXCL: atomic on local file systems and on
        NFS v3 and later, unlike `flock`. The file names its holder (host, pid, time); a lock whose
        holder is gone from this host, or older than STALE_LOCK_SECONDS, is broken."""
        lock = self.folder / MANIFEST_LOCK
        holder = json.dumps({"host": socket.gethostname(), "pid": os.getpid(), "at": time.time()})
        deadline = time.monotonic() + wait_seconds
        while True:
            try:
                fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
                break
            except FileExistsError:
                if self._break_if_stale(lock):
                    continue
                if time.monotonic() > deadline:
                    raise EvidenceLockError(f"{lock}: held by {self._holder(lock)} for over {wait_seconds:g} s")
                time.sleep(0.05)
        try:
            with os.fdopen(fd, "w") as f:
                f.write(holder)
                f.flush()
                os.fsync(f.fileno())
            yield
        finally:
            lock.unlink(missing_ok=True)

    @staticmethod
    def _holder(lock: Path) -> dict:
        try:
            data = json.loads(lock.read_text())
            return data if isinstance(data, dict) else {}
        except (OSError, ValueError):
            return {}

    def _break_if_stale(self, lock: Path) -> bool:
        try:
            age = time.time() - lock.stat().st_mtime
        except FileNotFoundError:
            return True  # released meanwhile: try again
        holder = self._holder(lock)
        gone = (holder.get("host") == socket.gethostname() and isinstance(holder.get("pid"), int)
                and not _pid_alive(holder["pid"]))
        # A holder names itself right after creating the file: nameless for seconds, it never will.
        nameless = not holder and age > 5.0
        if not gone and not nameless and age < STALE_LOCK_SECONDS:
            return False
        lock.unlink(missing_ok=True)
        return True

    def chain(self) -> list[dict]:
        if not self.path(MANIFEST).exists():
            return []
        return self.read_json(MANIFEST)["chain"]


def link_head(link: dict) -> str:
    """sha256 of the link's canonical JSON, its own head and signature left out."""
    body = {k: v for k, v in link.items() if k not in ("head", "signature")}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def latest_hashes(chain: list[dict]) -> dict[str, str]:
    """Each file's digest as the newest link recorded it."""
    latest: dict[str, str] = {}
    for link in chain:
        latest.update(link["files"])
    return latest
