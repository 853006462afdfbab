"""Signing evidence with a local P-256 key: DSSE envelopes anyone can check with the public key.

DSSE (github.com/secure-systems-lab/dsse) signs the *pre-authentication encoding* of the payload,
`"DSSEv1" SP len(type) SP type SP len(body) SP body`, so a signature over one payload type can
never be replayed as another. The private key stays in its file (or a secret); evidence only
ever holds envelopes, the public key and its id.
"""

from __future__ import annotations

import base64
import errno
import hashlib
import json
import os
import stat
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from golive.validation import escape_line, write_whole

__all__ = [
    "IN_TOTO_PAYLOAD_TYPE", "SigningError", "SigningKey", "dsse_pae", "generate_key",
    "key_id", "load_public_key", "read_key_file", "verify_envelope",
]

IN_TOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json"
PASSPHRASE_ENV = "GOLIVE_SIGNING_KEY_PASSPHRASE"
# A PEM key is a few hundred bytes; what a key file holds past this is not read (a device never ends).
MAX_KEY_BYTES = 1 << 16


class SigningError(ValueError):
    """A key that cannot be used, or a signature that does not verify; one line."""


def dsse_pae(payload_type: str, payload: bytes) -> bytes:
    kind = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)


def key_id(public_key: ec.EllipticCurvePublicKey) -> str:
    """sha256 of the DER SubjectPublicKeyInfo: stable, and printable beside the key."""
    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()


def _passphrase() -> bytes | None:
    value = os.environ.get(PASSPHRASE_ENV)
    return value.encode() if value else None


class SigningKey:
    """A P-256 private key, loaded from PEM; `repr` never shows it."""

    def __init__(self, private_key: ec.EllipticCurvePrivateKey):
        if not isinstance(private_key, ec.EllipticCurvePrivateKey) or private_key.curve.name != "secp256r1":
            raise SigningError("signing key: expected an ECDSA P-256 private key")
        self._key = private_key
        self.public_key = private_key.public_key()
        self.keyid = key_id(self.public_key)

    def __repr__(self) -> str:
        return f"SigningKey(keyid={self.keyid[:16]}…)"

    @classmethod
    def from_pem(cls, pem: bytes, source: str = "signing key") -> SigningKey:
        try:
            key = serialization.load_pem_private_key(pem, password=_passphrase())
        except (ValueError, TypeError) as exc:
            reason = "wrong or missing passphrase" if "password" in str(exc).lower() else "not a PEM private key"
            raise SigningError(f"{source}: {reason} ({PASSPHRASE_ENV} holds the passphrase)") from None
        return cls(key)

    @classmethod
    def from_file(cls, path: str | Path) -> SigningKey:
        path = Path(path)
        try:
            pem = read_key_file(path)
        except OSError as exc:
            raise SigningError(f"{escape_line(path)}: {exc.strerror} (make one with `golive keys init`)") from None
        return cls.from_pem(pem, escape_line(path))

    def public_pem(self) -> str:
        return self.public_key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()

    def sign(self, data: bytes) -> bytes:
        return self._key.sign(data, ec.ECDSA(hashes.SHA256()))

    def envelope(self, payload: bytes, payload_type: str = IN_TOTO_PAYLOAD_TYPE) -> dict:
        """A DSSE envelope (JSON form) over `payload`."""
        return {
            "payload": base64.b64encode(payload).decode(),
            "payloadType": payload_type,
            "signatures": [{"keyid": self.keyid,
                            "sig": base64.b64encode(self.sign(dsse_pae(payload_type, payload))).decode()}],
        }


def generate_key(directory: str | Path, name: str = "signing_key") -> tuple[Path, Path]:
    """Write `<name>.pem` (private, mode 0600, encrypted when the passphrase variable is set)
    and `<name>.pub.pem`; refuses to overwrite an existing key, and never writes through a
    symbolic link: the private key is created new (O_EXCL, O_NOFOLLOW), the public key in a new
    file renamed into place, which replaces a link rather than following it."""
    directory = Path(directory)
    private_path, public_path = directory / f"{name}.pem", directory / f"{name}.pub.pem"
    for path in (private_path, public_path):
        if path.is_symlink():
            raise SigningError(f"{path}: a symbolic link; refused (remove it, the key files are written in place)")
    if private_path.exists():
        what = "a key is already there" if private_path.is_file() else "something other than a key is there"
        raise SigningError(f"{private_path}: {what}; remove it first to make a new one")
    if public_path.exists() and not public_path.is_file():
        raise SigningError(f"{public_path}: not a file; remove it first")
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SigningError(f"{directory}: {exc.strerror}") from None
    key = ec.generate_private_key(ec.SECP256R1())
    passphrase = _passphrase()
    encryption = (serialization.BestAvailableEncryption(passphrase) if passphrase
                  else serialization.NoEncryption())
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)
    try:
        fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
    except OSError as exc:
        raise SigningError(f"{private_path}: {exc.strerror}; nothing written") from None
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    try:
        write_whole(public_path, SigningKey(key).public_pem().encode(), 0o644)
    except OSError as exc:
        private_path.unlink(missing_ok=True)
        raise SigningError(f"{public_path}: {exc.strerror}; nothing written") from None
    return private_path, public_path


def read_key_file(path: str | Path) -> bytes:
    """The key file at `path` (a link is followed: mounted secrets are links), at most MAX_KEY_BYTES
    of it, enough for any PEM key; OSError for anything but a regular file, so a FIFO or a device
    never holds the command up."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "not a file", str(path))
        return os.read(fd, MAX_KEY_BYTES)
    finally:
        os.close(fd)


def load_public_key(pem: bytes | str, source: str = "public key") -> ec.EllipticCurvePublicKey:
    try:
        key = serialization.load_pem_public_key(pem.encode() if isinstance(pem, str) else pem)
    except ValueError:
        raise SigningError(f"{source}: not a PEM public key") from None
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise SigningError(f"{source}: expected an ECDSA P-256 public key")
    return key


def verify_envelope(envelope: dict | str | bytes, public_key: ec.EllipticCurvePublicKey) -> tuple[str, bytes]:
    """The payload type and payload of a DSSE envelope signed by `public_key`; SigningError, in
    one line, otherwise (whatever the envelope holds: it is read from outside)."""
    try:
        env = json.loads(envelope) if isinstance(envelope, (str, bytes)) else envelope
        payload_type, encoded, signatures = env["payloadType"], env["payload"], env["signatures"]
    except (ValueError, KeyError, TypeError, RecursionError):
        raise SigningError("not a DSSE envelope") from None
    if (not isinstance(payload_type, str) or not isinstance(encoded, str) or not isinstance(signatures, list)
            or not all(isinstance(s, dict) for s in signatures)):
        raise SigningError("not a DSSE envelope (payloadType and payload are strings, signatures a list of objects)")
    try:
        payload = base64.b64decode(encoded, validate=True)
        pae = dsse_pae(payload_type, payload)
    except ValueError:  # not base64; a payload type that is no text (a lone surrogate)
        raise SigningError("not a DSSE envelope (payload is not base64, or payloadType not text)") from None
    wanted = key_id(public_key)
    for signature in signatures:
        sig = signature.get("sig")
        if signature.get("keyid") not in (None, "", wanted) or not isinstance(sig, str):
            continue
        try:
            public_key.verify(base64.b64decode(sig, validate=True), pae, ec.ECDSA(hashes.SHA256()))
            return payload_type, payload
        except (InvalidSignature, ValueError):
            continue
    ids = ", ".join(escape_line(s.get("keyid", "?"))[:16] for s in signatures) or "none"
    raise SigningError(f"no signature verifies with key {wanted[:16]}… (signed by {ids})")
