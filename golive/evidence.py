"""The evidence folder of a release: files written whole or not at all, and a manifest that is a
hash chain: each flow appends a link, so an edit or a deletion anywhere earlier shows."""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from golive.signing import SigningKey

__all__ = ["LINK_PAYLOAD_TYPE", "MANIFEST", "EvidenceLedger", "latest_hashes", "link_head", "sha256_file"]

MANIFEST = "manifest.json"
LINK_PAYLOAD_TYPE = "application/vnd.golive.evidence-link+sha256"


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
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return target

    def write_text(self, name: str, text: str) -> Path:
        return self.write_bytes(name, text.encode("utf-8"))

    def write_json(self, name: str, data: Any) -> Path:
        return self.write_text(name, json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")

    def read_json(self, name: str) -> Any:
        return json.loads(self.path(name).read_text())

    def files(self) -> list[str]:
        """Evidence files (relative names), the manifest and temporary files excluded."""
        if not self.folder.exists():
            return []
        return sorted(
            str(p.relative_to(self.folder)) for p in self.folder.rglob("*")
            if p.is_file() and p.name != MANIFEST and not p.name.startswith(".")
        )

    def seal(self, flow: str, signer: SigningKey | None = None, at: str | None = None) -> dict:
        """Append a link to the manifest's hash chain: the sha256 of every file new or changed
        since the last link, the previous link's head, and (with a key) a signature over the head.
        Serialised by a lock, so flows sealing one folder one after another never lose a link."""
        self.folder.mkdir(parents=True, exist_ok=True)
        with open(self.folder / ".manifest.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
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
