"""Detached armoured signatures with gpg, in a throwaway GnuPG home: made by the key named,
good only when gpg says GOODSIG and VALIDSIG by the key expected (any signer of the file) and
nothing against it (a revoked or expired key), and a key that cannot be named is one line."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tasks.gpg import GpgError, GpgVerdict, fingerprint_of, read_verdict, sign_detached, verify_detached
from tests.fakes.gnupg import throwaway_gpg_home


@pytest.fixture
def gpg(monkeypatch):
    with throwaway_gpg_home() as home:
        monkeypatch.setenv("GNUPGHOME", home.path)
        yield home


@pytest.fixture
def sums(tmp_path):
    path = tmp_path / "SHA256SUMS"
    path.write_text(f"{'a' * 64}  spark-1.4.0.cdx.json\n")
    return path


def test_a_signature_by_the_named_key_verifies(gpg, sums):
    signature = sign_detached(sums, gpg.user_id)
    assert signature.name == "SHA256SUMS.asc" and signature.read_text().startswith("-----BEGIN PGP SIGNATURE-----")
    verdict = verify_detached(signature, sums, gpg.fingerprint)
    assert verdict.ok and verdict.fingerprint == gpg.fingerprint


def test_changed_bytes_and_another_signer_do_not_verify(gpg, sums):
    signature = sign_detached(sums, gpg.fingerprint)
    other = gpg.new_key("someone else <other@example.invalid>")
    assert verify_detached(signature, sums, other).reason == f"signed by {gpg.fingerprint}, not by {other}"
    sums.write_text(sums.read_text().replace("a", "b", 1))
    assert verify_detached(signature, sums).reason == "BAD signature"


@pytest.mark.parametrize("key, error", [
    ("nobody@example.invalid", "--gpg-key: no secret key 'nobody@example.invalid' in GNUPGHOME="),
    ("--armor", "--gpg-key: expected a fingerprint or a user id, got '--armor'"),
    ("example.invalid", "--gpg-key: 'example.invalid' names 2 keys in GNUPGHOME="),
])
def test_a_key_that_names_no_single_secret_key_is_one_line(gpg, sums, key, error):
    gpg.new_key("second <second@example.invalid>")
    with pytest.raises(GpgError) as refused:
        fingerprint_of(key)
    assert str(refused.value).startswith(error) and "\n" not in str(refused.value)
    assert not (sums.parent / "SHA256SUMS.asc").exists()


def _revoke(gpg, fingerprint: str) -> None:
    """Import the revocation certificate gpg wrote when it made the key (its ':' guard taken off)."""
    certificate = Path(gpg.path, "openpgp-revocs.d", f"{fingerprint}.rev").read_text().replace(":-----", "-----")
    Path(gpg.path, "revoke.asc").write_text(certificate)
    gpg.run("--import", str(Path(gpg.path, "revoke.asc")))


def test_a_signature_by_a_revoked_key_is_refused_though_gpg_exits_0(gpg, sums):
    signature = sign_detached(sums, gpg.fingerprint)
    _revoke(gpg, gpg.fingerprint)
    assert verify_detached(signature, sums, gpg.fingerprint) == GpgVerdict(False, gpg.fingerprint,
                                                                          "signed by a revoked key")
    assert not verify_detached(signature, sums).ok


def test_a_signature_by_an_expired_key_is_refused_though_gpg_exits_0(gpg, sums):
    past = "--faked-system-time", "20200101T000000"
    gpg.run(*past, "--passphrase", "", "--quick-gen-key", "old <old@example.invalid>", "ed25519", "sign", "1d")
    old = next(line.split(":")[9] for line in gpg.run("--with-colons", "--list-keys", "old@example.invalid")
               .stdout.splitlines() if line.startswith("fpr:"))
    gpg.run(*past, "--armor", "--detach-sign", "--local-user", old, "--output", str(sums) + ".asc", str(sums))
    verdict = verify_detached(sums.with_name("SHA256SUMS.asc"), sums, old)
    assert verdict == GpgVerdict(False, old, "signed by an expired key")


def test_the_expected_key_may_be_any_signer_of_the_file(gpg, sums):
    other = gpg.new_key("co-signer <co@example.invalid>")
    gpg.run("--armor", "--detach-sign", "--local-user", other, "--local-user", gpg.fingerprint,
            "--output", str(sums) + ".asc", str(sums))
    signature = sums.with_name("SHA256SUMS.asc")
    assert verify_detached(signature, sums, gpg.fingerprint) == GpgVerdict(True, gpg.fingerprint,
                                                                          f"good signature by {gpg.fingerprint}")
    assert verify_detached(signature, sums, other).ok
    _revoke(gpg, gpg.fingerprint)
    assert verify_detached(signature, sums, gpg.fingerprint).reason == "signed by a revoked key"


def test_without_an_expected_key_only_a_key_the_keyring_trusts_is_good(gpg, sums, monkeypatch):
    signature = sign_detached(sums, gpg.fingerprint)
    public = gpg.run("--armor", "--export", gpg.fingerprint).stdout
    with throwaway_gpg_home("stranger <stranger@example.invalid>") as stranger:
        subprocess.run(["gpg", "--batch", "--homedir", stranger.path, "--import"], input=public, text=True,
                       capture_output=True, check=True)
        monkeypatch.setenv("GNUPGHOME", stranger.path)
        verdict = verify_detached(signature, sums)
        assert not verdict.ok and verdict.fingerprint == gpg.fingerprint
        assert verdict.reason.startswith(f"signed by {gpg.fingerprint}, a key the keyring does not trust fully")
        assert verify_detached(signature, sums, gpg.fingerprint).ok


@pytest.mark.parametrize("keyword", ["EXPSIG", "REVKEYSIG", "EXPKEYSIG", "KEYREVOKED"])
def test_a_refusing_status_line_fails_whatever_the_exit_code(keyword):
    fpr = "A" * 40
    status = (f"[GNUPG:] NEWSIG\n[GNUPG:] GOODSIG {fpr[-16:]} x\n[GNUPG:] {keyword} {fpr[-16:]} x\n"
              f"[GNUPG:] VALIDSIG {fpr} 2026-01-01 1 0 4 0 22 8 00 {fpr}\n[GNUPG:] TRUST_ULTIMATE 0 pgp\n")
    assert not read_verdict(status, 0, fpr).ok and not read_verdict(status, 0, None).ok
    assert read_verdict(status.replace(keyword, "NOTATION_NAME"), 0, fpr).ok


def test_gpg_never_fetches_a_key_to_check_a_signature(monkeypatch, sums):
    import tasks.gpg as gpg_module
    seen = []
    monkeypatch.setattr(gpg_module.subprocess, "run", lambda args, **kw: seen.append(args) or
                        subprocess.CompletedProcess(args, 2, b"", b"gpg: no signature"))
    assert not verify_detached(sums.with_name("x.asc"), sums).ok
    assert "--no-auto-key-retrieve" in seen[0] and seen[0].index("--") > seen[0].index("--verify")
