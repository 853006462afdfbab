"""The signing key comes from its file or, when one is named, from a Prefect Secret block; a block
that cannot be read is one line naming the setting."""

from __future__ import annotations

from pathlib import Path

import pytest

from golive.settings import SigningSettings
from golive.signing import SigningError, SigningKey
from tasks import signing


def test_a_named_secret_block_gives_the_key_and_a_missing_one_names_the_setting(signing_key, monkeypatch):
    pem = Path(signing_key["key_path"]).read_text()
    monkeypatch.setattr(signing, "read_secret", {"release-key": pem}.__getitem__)
    from_block = signing.load_signing_key(SigningSettings(secret_block="release-key"))
    assert from_block.keyid == SigningKey.from_file(signing_key["key_path"]).keyid

    def missing(block):
        raise ValueError(f"Unable to find block document named {block} for block type secret")

    monkeypatch.setattr(signing, "read_secret", missing)
    with pytest.raises(SigningError, match=r"^process\.signing\.secret_block: Unable to find block document named "
                                           r"release-key"):
        signing.load_signing_key(SigningSettings(secret_block="release-key"))
