"""Sigstore keyless signing (Fulcio certificate, Rekor log entry): only online, with an identity."""

from __future__ import annotations

import os

from prefect import task
from prefect.cache_policies import NO_CACHE

from golive import layout
from golive.evidence import EvidenceLedger


@task(name="sign keyless with sigstore", cache_policy=NO_CACHE)
def sign_keyless(folder: str, subject_name: str, statement: str) -> dict:
    """Sign the in-toto statement with sigstore into `<subject_name minus .json>.sigstore.json`.

    Needs an OIDC identity token (`SIGSTORE_ID_TOKEN`, or one the CI ambiently provides) and the
    public-good instance; without either it says why it did not sign, and the local-key
    envelope stands alone.
    """
    from sigstore import dsse, oidc
    from sigstore.models import ClientTrustConfig
    from sigstore.sign import SigningContext

    raw_token = os.environ.get("SIGSTORE_ID_TOKEN")
    try:
        raw_token = raw_token or oidc.detect_credential()
    except oidc.IdentityError as exc:
        return {"signed": False, "reason": f"no identity token ({exc})"}
    if not raw_token:
        return {"signed": False, "reason": "no identity token (set SIGSTORE_ID_TOKEN or run where one is ambient)"}
    try:
        context = SigningContext.from_trust_config(ClientTrustConfig.production())
        with context.signer(oidc.IdentityToken(raw_token), cache=False) as signer:
            bundle = signer.sign_dsse(dsse.Statement(statement.encode()))
    except Exception as exc:  # offline, refused token, Fulcio/Rekor errors: all mean "not signed"
        return {"signed": False, "reason": f"sigstore unavailable ({type(exc).__name__}: {exc})"}
    name = layout.sigstore_bundle(subject_name)
    EvidenceLedger(folder).write_text(name, bundle.to_json())
    return {"signed": True, "bundle": name}
