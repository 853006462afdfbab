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
from typing import Any, NamedTuple

from golive import layout
from golive.signing import SigningKey

__all__ = [
    "LINK_PAYLOAD_TYPE", "MANIFEST", "MANIFEST_LOCK", "EvidenceLedger", "EvidenceLockError", "MalformedManifest",
    "Survey", "chain_links", "latest_hashes", "link_head", "pid_alive", "read_regular", "scratch_problem",
    "sha256_file",
]

MANIFEST = layout.MANIFEST
MANIFEST_LOCK = ".manifest.lock"
LINK_PAYLOAD_TYPE = "application/vnd.golive.evidence-link+sha256"
# A write in progress: `.<name>.<random>.partial` beside its target (the random part as
# tempfile.mkstemp makes it), renamed over it when whole.
_TEMP_SUFFIX = ".partial"
_TEMP_NAME = re.compile(r"^\..+\.[a-z0-9_]{8}\.partial$")
# A seal or a write takes seconds; a lock (or a write) this old outlived its holder even where its
# pid cannot be checked.
STALE_LOCK_SECONDS = 600.0
# The holder record is a few dozen bytes; a lock file holding more was not written by a ledger.
_HOLDER_BYTES = 4096
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


class EvidenceLockError(RuntimeError):
    """The manifest is being sealed by another writer for longer than a seal may take, or its
    lock's place holds something that is not a lock file."""


class MalformedManifest(ValueError):
    """The manifest is not a chain of links; the message says where."""


_SHA256 = re.compile(r"[0-9a-f]{64}")


def _is_digest(value: object) -> bool:
    """A sha256 digest as the ledger writes it: 64 lower-case hex digits, nothing more."""
    return isinstance(value, str) and bool(_SHA256.fullmatch(value))


def _is_scratch(relative: str) -> bool:
    """Named like the ledger's own lock (at the top) or one of its writes in progress (at any depth)."""
    name = relative.rsplit("/", 1)[-1]
    return relative == MANIFEST_LOCK or bool(_TEMP_NAME.match(name))


def _kind(mode: int) -> str:
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISREG(mode):
        return "a file"
    return "a special file"


def _open_regular(path: Path):
    """`path` open for reading when it is a regular file: never through a symbolic link, never
    waiting on a FIFO; OSError otherwise."""
    fd = os.open(path, os.O_RDONLY | _NOFOLLOW | getattr(os, "O_NONBLOCK", 0))
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise OSError(errno.EINVAL, f"{_kind(mode)}, not a file", str(path))
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_regular(path: Path, limit: int | None = None) -> bytes:
    """The bytes of the regular file at `path` (at most `limit`), as `_open_regular` opens it."""
    with _open_regular(path) as f:
        return f.read() if limit is None else f.read(limit)


def _is_holder_record(data: bytes) -> bool:
    """What the ledger writes into its lock: nothing yet, or `{"host", "pid", "at"}`."""
    if not data:
        return True
    try:
        holder = json.loads(data)
    except (ValueError, RecursionError):
        return False
    return (isinstance(holder, dict) and set(holder) == {"host", "pid", "at"} and isinstance(holder["host"], str)
            and type(holder["pid"]) is int and 0 < holder["pid"] < 2 ** 31
            and type(holder["at"]) in (int, float) and abs(holder["at"]) < 1e12)


def scratch_problem(folder: Path, relative: str, now: float | None = None) -> str | None:
    """Why an entry named like the ledger's scratch (see `_is_scratch`) cannot be passed over as
    the ledger's own work, in one line; None when it can.

    The lock at the top passes when it is a regular file holding what the ledger writes there
    (nothing, for the instant after it is made, or its holder record). A partial file passes only
    while a write may still be under way: its bytes are the first part of a file not yet named, so
    nothing in them can be checked, but one older than STALE_LOCK_SECONDS (or dated as far ahead)
    outlived its writer and holds bytes that no link will ever vouch for.
    """
    path = Path(folder) / relative
    try:
        info = path.lstat()
        if relative == MANIFEST_LOCK and stat.S_ISREG(info.st_mode):
            data = read_regular(path, _HOLDER_BYTES + 1)
    except FileNotFoundError:
        return None  # released, or renamed into place, while the folder was read
    except OSError as exc:
        return f"{relative}: unreadable ({exc.strerror})"
    if not stat.S_ISREG(info.st_mode):
        return f"{relative}: {_kind(info.st_mode)} where the ledger keeps a file of its own"
    if relative == MANIFEST_LOCK:
        return None if _is_holder_record(data) else f"{relative}: holds something other than the ledger's lock record"
    age = (time.time() if now is None else now) - info.st_mtime
    if abs(age) > STALE_LOCK_SECONDS:
        return f"{relative}: a write left unfinished {age:.0f} s ago, which no link vouches for"
    return None


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


def pid_alive(pid: int) -> bool:
    """A process of this id runs on this host (one of another user's counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Survey(NamedTuple):
    files: list[str]  # evidence: every regular file but the manifest and scratch
    refused: list[str]  # symbolic links and special files, which cannot be evidence
    scratch: list[str]  # named like the ledger's own lock or writes in progress


def sha256_file(path: Path) -> str:
    """sha256 of the regular file at `path` (OSError for a symbolic link or a special file)."""
    digest = hashlib.sha256()
    with _open_regular(path) as f:
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

    def survey(self) -> Survey:
        """What the folder holds: evidence files, entries that cannot be evidence (symbolic links
        and special files), and entries named like the ledger's scratch (see `scratch_problem`).

        Links are never followed: a link could point a verified name at a file outside the folder.
        An entry that vanishes while the folder is listed (a write in progress renamed into place,
        a lock released) is left out: it was never there to seal.
        """
        files: list[str] = []
        refused: list[str] = []
        scratch: list[str] = []
        if not self.folder.is_dir():
            return Survey(files, refused, scratch)
        for root, dirs, names in os.walk(self.folder, followlinks=False):
            here = Path(root)
            for name in [*dirs, *names]:
                path = here / name
                relative = path.relative_to(self.folder).as_posix()
                try:
                    mode = path.lstat().st_mode
                except FileNotFoundError:
                    continue
                if stat.S_ISLNK(mode):
                    refused.append(relative)
                elif stat.S_ISDIR(mode):
                    if relative == MANIFEST_LOCK:
                        scratch.append(relative)
                elif not stat.S_ISREG(mode):
                    refused.append(relative)
                elif _is_scratch(relative):
                    scratch.append(relative)
                elif relative != MANIFEST:
                    files.append(relative)
        return Survey(sorted(files), sorted(refused), sorted(scratch))

    def seal(self, flow: str, signer: SigningKey | None = None, at: str | None = None) -> dict:
        """Append a link to the manifest's hash chain: the sha256 of every file new or changed
        since the last link, the previous link's head, and (with a key) a signature over the head.
        Serialised by a lock file, so flows sealing one folder one after another never lose a link."""
        self.folder.mkdir(parents=True, exist_ok=True)
        with self._locked():
            chain = self.chain()
            known = latest_hashes(chain)
            current = {}
            for name in self.files():
                try:
                    current[name] = sha256_file(self.folder / name)
                except FileNotFoundError:
                    continue  # removed since the folder was listed: nothing to vouch for
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
        holder is gone from this host, or older than STALE_LOCK_SECONDS, is broken. Anything but a
        regular file in its place is refused at once, and the wait ends at `wait_seconds` whatever
        happens to the file meanwhile."""
        lock = self.folder / MANIFEST_LOCK
        holder = json.dumps({"host": socket.gethostname(), "pid": os.getpid(), "at": time.time()})
        deadline = time.monotonic() + wait_seconds
        while True:
            try:
                fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY | _NOFOLLOW, 0o644)
                break
            except FileExistsError:
                pass
            if time.monotonic() > deadline:
                raise EvidenceLockError(f"{lock}: held by {self._holder(lock)} for over {wait_seconds:g} s")
            if not self._break_if_stale(lock):
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
            data = read_regular(lock, _HOLDER_BYTES + 1)
            return json.loads(data) if _is_holder_record(data) and data else {}
        except (OSError, ValueError):
            return {}

    def _break_if_stale(self, lock: Path) -> bool:
        """Remove the lock when its holder is provably gone or it is too old; EvidenceLockError
        when what is there is no lock file at all (a symbolic link, a folder)."""
        try:
            info = lock.lstat()
        except FileNotFoundError:
            return True  # released meanwhile: try again
        if not stat.S_ISREG(info.st_mode):
            raise EvidenceLockError(f"{lock}: not a lock file the ledger made ({_kind(info.st_mode)}); "
                                    "remove it to seal the folder")
        age = time.time() - info.st_mtime
        holder = self._holder(lock)
        gone = (holder.get("host") == socket.gethostname() and isinstance(holder.get("pid"), int)
                and not pid_alive(holder["pid"]))
        # A holder names itself right after creating the file: nameless for seconds, it never will.
        nameless = not holder and age > 5.0
        if not gone and not nameless and age < STALE_LOCK_SECONDS:
            return False
        lock.unlink(missing_ok=True)
        return True

    def chain(self) -> list[dict]:
        """The manifest's links ([] before the first seal); MalformedManifest, in one line, for a
        manifest that is not a regular file holding a chain."""
        try:
            data = read_regular(self.folder / MANIFEST)
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise MalformedManifest(f"{MANIFEST}: unreadable ({exc.strerror})") from None
        try:
            return chain_links(json.loads(data))
        except MalformedManifest as exc:
            raise MalformedManifest(f"{MANIFEST}: malformed ({exc})") from None
        except RecursionError:
            raise MalformedManifest(f"{MANIFEST}: malformed (nested too deeply)") from None
        except ValueError:
            raise MalformedManifest(f"{MANIFEST}: malformed (not JSON)") from None


def chain_links(manifest: object) -> list[dict]:
    """The links of a decoded manifest, each checked for the shape the ledger writes, so no
    reader meets a surprise type; MalformedManifest says where it is not."""
    if not isinstance(manifest, dict) or not isinstance(manifest.get("chain"), list):
        raise MalformedManifest("expected an object with a `chain` list")
    for index, link in enumerate(manifest["chain"], 1):
        if not isinstance(link, dict):
            raise MalformedManifest(f"link {index} is not an object")
        files = link.get("files")
        if not isinstance(files, dict) or not all(
                isinstance(k, str) and _is_digest(v) for k, v in files.items()):
            raise MalformedManifest(f"link {index}: `files` must map names to sha256 digests")
        # Heads are printed and compared as they are: anything but a digest could carry a line break.
        if not _is_digest(link.get("head")) or not (link.get("previous") is None or _is_digest(link["previous"])):
            raise MalformedManifest(f"link {index}: `head` and `previous` must be digests")
        if "signature" in link and not isinstance(link["signature"], dict):
            raise MalformedManifest(f"link {index}: `signature` must be an object")
        if type(link.get("seq")) is not int or not isinstance(link.get("flow"), str):
            raise MalformedManifest(f"link {index}: `seq` must be a whole number and `flow` a name")
    return manifest["chain"]


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
