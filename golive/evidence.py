"""The evidence folder of a release: files written whole or not at all, and their manifest."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

__all__ = ["MANIFEST", "EvidenceLedger", "sha256_file"]

MANIFEST = "manifest.json"


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

    def write_text(self, name: str, text: str) -> Path:
        target = self.path(name)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return target

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

    def write_manifest(self) -> dict[str, str]:
        hashes = {name: sha256_file(self.folder / name) for name in self.files()}
        self.write_json(MANIFEST, {"algorithm": "sha256", "files": hashes})
        return hashes

    def verify_manifest(self) -> list[str]:
        """Problems found, one line a file; empty when every hash matches and nothing is extra."""
        try:
            recorded = self.read_json(MANIFEST)["files"]
        except (OSError, KeyError, json.JSONDecodeError):
            return [f"{MANIFEST}: missing or unreadable"]
        problems = []
        present = set(self.files())
        for name, digest in recorded.items():
            if name not in present:
                problems.append(f"{name}: missing")
            elif sha256_file(self.folder / name) != digest:
                problems.append(f"{name}: changed (sha256 differs)")
        problems += [f"{name}: not in the manifest" for name in sorted(present - set(recorded))]
        return problems
