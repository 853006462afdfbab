"""Detached armoured signatures with gpg, in a throwaway GnuPG home: made by the key named,
good only when gpg says VALIDSIG (and by the key expected), and a key that cannot be named is
one line."""

from __future__ import annotations

import pytest

from tasks.gpg import GpgError, fingerprint_of, sign_detached, verify_detached
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
