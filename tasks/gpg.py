"""GnuPG through its `gpg` binary: detached, armoured signatures, and checking them.

The keyring is the user's (`GNUPGHOME`, else gpg's default); the key is the one they name by
fingerprint or user id (`--gpg-key`, or `GOLIVE_GPG_KEY`). A key with a passphrase takes it from
`GOLIVE_GPG_PASSPHRASE` (given to gpg on its standard input, never on its command line), else
from the user's gpg-agent. A signature is good only when gpg reports it valid (`VALIDSIG`), and,
when a signer is expected, made by that key or one of its subkeys.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from golive.validation import escape_line

__all__ = ["GPG_KEY_ENV", "GpgError", "GpgVerdict", "fingerprint_of", "sign_detached", "verify_detached"]

GPG_KEY_ENV = "GOLIVE_GPG_KEY"
PASSPHRASE_ENV = "GOLIVE_GPG_PASSPHRASE"
_TIMEOUT = 60


class GpgError(RuntimeError):
    """gpg is missing, refused, or the key cannot be found; one line."""


@dataclass(frozen=True)
class GpgVerdict:
    ok: bool
    fingerprint: str | None  # the primary key's that made the signature
    reason: str


def _gpg(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(["gpg", "--batch", "--no-tty", *args], input=stdin, capture_output=True,
                              timeout=_TIMEOUT)
    except FileNotFoundError:
        raise GpgError("gpg is not installed (Debian: apt-get install gnupg)") from None
    except subprocess.TimeoutExpired:
        raise GpgError(f"gpg {args[0]} did not finish within {_TIMEOUT} s") from None


def _last_line(done: subprocess.CompletedProcess) -> str:
    lines = done.stderr.decode(errors="replace").strip().splitlines()
    return escape_line(lines[-1]) if lines else f"exit {done.returncode}"


def fingerprint_of(key: str, secret: bool = True) -> str:
    """The fingerprint of the one key `key` names (a fingerprint, a key id or a user id) in the
    keyring; GpgError when it names none or several."""
    if not key.strip() or key.startswith("-"):
        raise GpgError(f"--gpg-key: expected a fingerprint or a user id, got {escape_line(key)[:80]!r}")
    done = _gpg("--with-colons", "--list-secret-keys" if secret else "--list-keys", "--", key)
    fingerprints, primary = [], False
    for line in done.stdout.decode(errors="replace").splitlines():
        fields = line.split(":")
        if fields[0] in ("sec", "pub"):
            primary = True
        elif fields[0] in ("ssb", "sub"):
            primary = False
        elif fields[0] == "fpr" and primary and len(fields) > 9:
            fingerprints.append(fields[9])
            primary = False
    where = f"GNUPGHOME={escape_line(os.environ['GNUPGHOME'])}" if "GNUPGHOME" in os.environ else "the default keyring"
    kind = "secret key" if secret else "key"
    if not fingerprints:
        raise GpgError(f"--gpg-key: no {kind} {escape_line(key)[:80]!r} in {where}")
    if len(fingerprints) > 1:
        raise GpgError(f"--gpg-key: {escape_line(key)[:80]!r} names {len(fingerprints)} keys in {where}; "
                       f"give a fingerprint")
    return fingerprints[0]


def sign_detached(path: Path, key: str, signature: Path | None = None) -> Path:
    """Write `<path>.asc` (or `signature`): an armoured detached signature of `path` by `key`."""
    signature = signature or path.with_name(path.name + ".asc")
    fingerprint = fingerprint_of(key)
    passphrase = os.environ.get(PASSPHRASE_ENV)
    options = ["--pinentry-mode", "loopback", "--passphrase-fd", "0"] if passphrase else []
    done = _gpg(*options, "--yes", "--armor", "--detach-sign", "--local-user", fingerprint,
                "--output", str(signature), "--", str(path),
                stdin=passphrase.encode() + b"\n" if passphrase else None)
    if done.returncode != 0:
        signature.unlink(missing_ok=True)
        raise GpgError(f"gpg could not sign {escape_line(path.name)} with {fingerprint}: {_last_line(done)}")
    return signature


def verify_detached(signature: Path, data: Path, expected: str | None = None) -> GpgVerdict:
    """Whether `signature` is a good signature of `data` by a key of the keyring (by `expected`, a
    fingerprint, when given), as gpg's status lines say."""
    done = _gpg("--status-fd", "1", "--verify", "--", str(signature), str(data))
    status = [line.split()[1:] for line in done.stdout.decode(errors="replace").splitlines()
              if line.startswith("[GNUPG:] ") and len(line.split()) > 1]
    valid = next((fields for fields in status if fields[0] == "VALIDSIG"), None)
    keywords = {fields[0]: fields for fields in status}
    if done.returncode != 0 or valid is None:
        for keyword, why in (("BADSIG", "BAD signature"), ("NO_PUBKEY", "signed by a key not in the keyring"),
                             ("EXPKEYSIG", "signed by an expired key"), ("REVKEYSIG", "signed by a revoked key"),
                             ("NODATA", "not an OpenPGP signature"), ("ERRSIG", "cannot be checked")):
            if keyword in keywords:
                return GpgVerdict(False, None, why)
        return GpgVerdict(False, None, f"does not verify ({_last_line(done)})")
    signer = valid[1] if len(valid) > 1 else None
    primary = valid[10] if len(valid) > 10 else signer
    if expected and expected.upper() not in {signer, primary}:
        return GpgVerdict(False, primary, f"signed by {primary}, not by {expected}")
    return GpgVerdict(True, primary, f"good signature by {primary}")
