"""The signing key: from its file or a Prefect Secret block, used inside the task that signs.

A key never leaves these functions: tasks return key ids and file names, never the key, so no
result, log or evidence file can hold it.
"""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from golive import layout
from golive.evidence import EvidenceLedger
from golive.models import Check
from golive.preflight import signing_key_check
from golive.settings import SigningSettings
from golive.signing import IN_TOTO_PAYLOAD_TYPE, SigningError, SigningKey, verify_envelope
from tasks.secret_blocks import read_secret


def load_signing_key(signing: SigningSettings) -> SigningKey:
    """The private key from the Secret block when one is named, else from key_path."""
    if signing.secret_block:
        try:
            pem = read_secret(signing.secret_block)
        except ValueError as exc:
            raise SigningError(f"process.signing.secret_block: {exc}") from None
        return SigningKey.from_pem(str(pem).encode(), f"Secret block {signing.secret_block!r}")
    return SigningKey.from_file(signing.key_path)


@task(name="check the signing key", cache_policy=NO_CACHE)
def check_signing_key(signing: SigningSettings) -> Check:
    """Load the key and sign and verify a probe with it (golive.preflight.signing_key_check)."""
    try:
        key = load_signing_key(signing)
        verify_envelope(key.envelope(b"golive preflight", "text/plain"), key.public_key)
    except SigningError as exc:
        return signing_key_check(None, None, str(exc))
    return signing_key_check(key.keyid, signing.secret_block or signing.key_path)


@task(name="sign into the evidence", retries=1, cache_policy=NO_CACHE)
def sign_into_evidence(folder: str, name: str, payload: str, signing: SigningSettings,
                       payload_type: str = IN_TOTO_PAYLOAD_TYPE) -> str:
    """Write `name`: a DSSE envelope over `payload`, signed with the local key; returns the key id."""
    key = load_signing_key(signing)
    EvidenceLedger(folder).write_json(name, key.envelope(payload.encode(), payload_type))
    return key.keyid


@task(name="publish the public key", cache_policy=NO_CACHE)
def publish_public_key(folder: str, signing: SigningSettings) -> str:
    """Write the public half of the key (only that) so the evidence names who signed it."""
    key = load_signing_key(signing)
    EvidenceLedger(folder).write_text(layout.PUBLIC_KEY, key.public_pem())
    return key.keyid
