"""Prefect Secret blocks: the credentials golive sends to a service are read from one, by name, at
the moment they are used, so that they never sit in the settings, the run's parameters or the
evidence."""

from __future__ import annotations

from golive.validation import http_auth

__all__ = ["block_credentials", "read_secret"]


def read_secret(block: str) -> object:
    """The value of the Secret block named `block` (a string or a mapping); ValueError when there
    is none, its message naming the block only."""
    from prefect.blocks.system import Secret

    return Secret.load(block).get()


def block_credentials(setting: str, block: str) -> tuple[dict[str, str], tuple[str, str] | None]:
    """Headers and a basic-auth pair from the Secret block named by `setting`
    (`golive.validation.http_auth` gives the forms it may hold). ValueError in one line naming the
    setting and the block, never the value, when the block is missing or holds nothing usable."""
    where = f"{setting} {block!r}"
    try:
        secret = read_secret(block)
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None
    return http_auth(secret, where)
