"""A throwaway GnuPG home with one signing key, for tests that sign and check SHA256SUMS.

The home is a short path in the temp folder (gpg-agent's socket path must fit in 108 bytes,
which a test's tmp_path may not), the key has no passphrase, and the agent it starts is stopped
when the home is removed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass


@dataclass(frozen=True)
class GpgHome:
    path: str
    fingerprint: str
    user_id: str

    def run(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["gpg", "--batch", "--homedir", self.path, *args], capture_output=True, text=True,
                              check=True, timeout=60)

    def new_key(self, user_id: str) -> str:
        """Another key in this home; its fingerprint."""
        self.run("--passphrase", "", "--quick-gen-key", user_id, "ed25519", "sign", "never")
        listed = self.run("--with-colons", "--list-secret-keys", user_id).stdout
        return next(line.split(":")[9] for line in listed.splitlines() if line.startswith("fpr:"))


@contextmanager
def throwaway_gpg_home(user_id: str = "golive release <release@example.invalid>") -> Iterator[GpgHome]:
    path = tempfile.mkdtemp(prefix="gpg-")
    os.chmod(path, 0o700)
    home = GpgHome(path, "", user_id)
    try:
        yield GpgHome(path, home.new_key(user_id), user_id)
    finally:
        subprocess.run(["gpgconf", "--homedir", path, "--kill", "all"], capture_output=True, timeout=30)
        shutil.rmtree(path, ignore_errors=True)
