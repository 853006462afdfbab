"""Prefect Secret blocks: the credentials golive sends to a service are read from one, by name, at
the moment they are used, so that they never sit in the settings, the run's parameters or the
evidence."""

from __future__ import annotations

__all__ = ["read_secret"]


def read_secret(block: str) -> object:
    """The value of the Secret block named `block` (a string or a mapping); ValueError when there
    is none, its message naming the block only."""
    from prefect.blocks.system import Secret

    return Secret.load(block).get()
