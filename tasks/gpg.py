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

__all__ = ["GPG_KEY_ENV", "GpgError", "GpgVerdict", "fingerprint_of", "read_verdict", "sign_detached",
           "verify_detached"]

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


# A signature gpg calls good (GOODSIG, VALIDSIG, exit 0) is still refused when one of these is
# said of it or of its key: a revoked or expired key, an expired signature.
_REFUSED = {"REVKEYSIG": "signed by a revoked key", "KEYREVOKED": "signed by a revoked key",
            "EXPKEYSIG": "signed by an expired key", "EXPSIG": "an expired signature"}
_FAILED = (("BADSIG", "BAD signature"), ("NO_PUBKEY", "signed by a key not in the keyring"),
           ("ERRSIG", "cannot be checked"), ("NODATA", "not an OpenPGP signature"))
_TRUSTED = {"TRUST_FULLY", "TRUST_ULTIMATE"}


def _signatures(status: str) -> list[dict[str, list[str]]]:
    """gpg's status lines, one group of keyword → fields per signature (each starts at NEWSIG)."""
    groups: list[dict[str, list[str]]] = [{}]
    for line in status.splitlines():
        fields = line.split()
        if len(fields) < 2 or fields[0] != "[GNUPG:]":
            continue
        if fields[1] == "NEWSIG" and groups[-1]:
            groups.append({})
        groups[-1].setdefault(fields[1], fields[2:])
    return [group for group in groups if group]


def _signer(group: dict[str, list[str]]) -> tuple[str | None, str | None]:
    """The signing (sub)key's and its primary key's fingerprints, from VALIDSIG."""
    valid = group.get("VALIDSIG") or []
    signer = valid[0].upper() if valid else None
    return signer, (valid[9].upper() if len(valid) > 9 else signer)


def read_verdict(status: str, returncode: int, expected: str | None, last_line: str = "") -> GpgVerdict:
    """The verdict gpg's status lines give: good only for a signature with GOODSIG and VALIDSIG and
    nothing refused (revoked, expired), by `expected` (its primary key or the subkey) when given,
    else by a key the keyring trusts fully. Every signature of the file is read: the expected
    signer may be any of them."""
    groups = _signatures(status)
    verdicts, others = [], []
    for group in groups:
        signer, primary = _signer(group)
        if expected and primary and expected.upper() not in {signer, primary}:
            others.append(GpgVerdict(False, primary, f"signed by {primary}, not by {expected}"))
            continue
        refused = next((why for keyword, why in _REFUSED.items() if keyword in group), None)
        failed = next((why for keyword, why in _FAILED if keyword in group), None)
        if refused or failed or "GOODSIG" not in group or primary is None:
            verdicts.append(GpgVerdict(False, primary, refused or failed or "not a good signature"))
        elif "TRUST_NEVER" in group:
            verdicts.append(GpgVerdict(False, primary, f"signed by {primary}, a key the keyring never trusts"))
        elif not expected and not _TRUSTED & group.keys():
            verdicts.append(GpgVerdict(False, primary, f"signed by {primary}, a key the keyring does not trust "
                                                       f"fully (name the key expected to accept it)"))
        else:
            verdicts.append(GpgVerdict(True, primary, f"good signature by {primary}"))
    good = next((v for v in verdicts if v.ok), None)
    # gpg exits 2 when one of several signers' keys is missing; a BAD signature (exit 1) fails it all.
    if good is not None and (returncode == 0 or (returncode == 2 and len(groups) > 1)):
        return good
    if good is not None:
        return GpgVerdict(False, good.fingerprint, f"another signature in it fails ({last_line})")
    if verdicts or others:
        return (verdicts or others)[0]
    return GpgVerdict(False, None, f"does not verify ({last_line or f'exit {returncode}'})")


def verify_detached(signature: Path, data: Path, expected: str | None = None) -> GpgVerdict:
    """Whether `signature` is a good signature of `data` by `expected` (a fingerprint), or, when
    none is named, by a key the keyring trusts fully; keys are never fetched from a keyserver."""
    done = _gpg("--no-auto-key-retrieve", "--status-fd", "1", "--verify", "--", str(signature), str(data))
    return read_verdict(done.stdout.decode(errors="replace"), done.returncode, expected, _last_line(done))
