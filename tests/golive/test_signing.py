"""DSSE envelopes and the signing key: what verifies, who may read the key, what a missing one says."""

from __future__ import annotations

import base64
import os
import stat
import threading
from pathlib import Path

import pytest

from cli.main import main
from golive.signing import SigningError, SigningKey, generate_key, verify_envelope


@pytest.fixture(scope="module")
def key(tmp_path_factory) -> SigningKey:
    private_path, _ = generate_key(tmp_path_factory.mktemp("key"))
    return SigningKey.from_file(private_path)


@pytest.fixture(scope="module")
def other_key(tmp_path_factory) -> SigningKey:
    private_path, _ = generate_key(tmp_path_factory.mktemp("other-key"))
    return SigningKey.from_file(private_path)


def test_an_envelope_verifies_only_for_its_payload_and_key(key, other_key):
    envelope = key.envelope(b'{"a": 1}')
    assert verify_envelope(envelope, key.public_key) == ("application/vnd.in-toto+json", b'{"a": 1}')
    forged = {**envelope, "payload": base64.b64encode(b'{"a": 2}').decode()}
    with pytest.raises(SigningError, match="no signature verifies"):
        verify_envelope(forged, key.public_key)
    with pytest.raises(SigningError, match="no signature verifies"):
        verify_envelope(envelope, other_key.public_key)
    retyped = {**envelope, "payloadType": "text/plain"}  # the type is signed too (PAE)
    with pytest.raises(SigningError):
        verify_envelope(retyped, key.public_key)


def test_keys_init_makes_a_private_key_only_its_owner_reads_and_never_overwrites(tmp_path, capsys):
    assert main(["keys", "init", "--dir", str(tmp_path)]) == 0
    private_path = tmp_path / "signing_key.pem"
    assert stat.S_IMODE(private_path.stat().st_mode) == 0o600
    assert "BEGIN PUBLIC KEY" in (tmp_path / "signing_key.pub.pem").read_text()
    assert "PRIVATE" not in capsys.readouterr().out.replace("private key:", "")
    assert main(["keys", "init", "--dir", str(tmp_path)]) == 2
    assert "a key is already there" in capsys.readouterr().err


def test_a_passphrase_protected_key_needs_its_passphrase(tmp_path, monkeypatch):
    monkeypatch.setenv("GOLIVE_SIGNING_KEY_PASSPHRASE", "correct horse")
    private_path, _ = generate_key(tmp_path)
    assert b"ENCRYPTED" in private_path.read_bytes()
    assert SigningKey.from_file(private_path).keyid
    monkeypatch.setenv("GOLIVE_SIGNING_KEY_PASSPHRASE", "wrong")
    with pytest.raises(SigningError, match="passphrase"):
        SigningKey.from_file(private_path)


def test_a_missing_key_says_how_to_make_one(tmp_path):
    with pytest.raises(SigningError, match="golive keys init"):
        SigningKey.from_file(tmp_path / "absent.pem")


def test_keys_init_never_writes_through_a_symlinked_public_key_file(tmp_path, capsys):
    victim = tmp_path / "victim.txt"
    victim.write_text("do not overwrite\n")
    keys = tmp_path / "keys"
    keys.mkdir()
    (keys / "signing_key.pub.pem").symlink_to(victim)
    assert main(["keys", "init", "--dir", str(keys)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "signing_key.pub.pem: a symbolic link" in err
    assert victim.read_text() == "do not overwrite\n"
    assert not (keys / "signing_key.pem").exists()


@pytest.mark.parametrize("make", [lambda p: p.symlink_to(p.parent / "nowhere"), lambda p: p.mkdir()])
def test_keys_init_refuses_anything_in_the_private_keys_place_in_one_line(tmp_path, capsys, make):
    make(tmp_path / "signing_key.pem")
    assert main(["keys", "init", "--dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "signing_key.pem: " in err
    assert not (tmp_path / "signing_key.pub.pem").exists()


def test_keys_init_replaces_a_public_key_left_without_its_private_key(tmp_path):
    (tmp_path / "signing_key.pub.pem").write_text("an old key's\n")
    private_path, public_path = generate_key(tmp_path)
    assert public_path.read_text() == SigningKey.from_file(private_path).public_pem()
    assert stat.S_IMODE(public_path.stat().st_mode) == 0o644


@pytest.mark.parametrize("kind", ["fifo", "device", "folder"])
def test_a_key_path_that_is_no_file_is_one_line_and_never_waits(tmp_path, capsys, kind):
    path = {"fifo": tmp_path / "key.pem", "device": Path("/dev/zero"), "folder": tmp_path}[kind]
    if kind == "fifo":
        os.mkfifo(path)
    outcomes: list = []

    def load() -> None:
        try:
            SigningKey.from_file(path)
        except SigningError as exc:
            outcomes.append(str(exc))
        outcomes.append(main(["evidence", "verify", str(tmp_path), "--key", str(path)]))

    reader = threading.Thread(target=load, daemon=True)
    reader.start()
    reader.join(10)
    if reader.is_alive() and kind == "fifo":  # end the wait of a reader that opened the FIFO
        with open(path, "wb"):
            pass
    assert outcomes == [f"{path}: not a file (make one with `golive keys init`)", 2]
    assert capsys.readouterr().err == f"golive: {path}: not a file (give the trusted public key with --key)\n"
