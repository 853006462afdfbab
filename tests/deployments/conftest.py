"""One real Prefect server and process worker for the deployments tests (one unit of work for the
test workers, tests/scheduling.py), on a free loopback port, with golive's deployments; stopped
once these tests are done, whatever happens (not left using the CPU while the test worker runs
other files), and tied to this process so nothing outlives a killed test run. The server runs on
a PostgreSQL of its own where Debian's `postgresql` is installed (the database a shared server
uses), else on SQLite."""

from __future__ import annotations

import sys

import pytest

from cli.stack import LocalPostgres, Stack, StackError
from sandbox.processes import free_ports
from tests.deployments._prefect import ROOT, os_environ_scoped, run


@pytest.fixture(scope="package")
def prefect_stack(tmp_path_factory):
    """The running stack; yields (stack, the environment that points at it). The worker's flow
    runs see the GitHub stand-in's token, as a real worker would see a real one."""
    from tests.fakes.github_api import TOKEN

    folder = tmp_path_factory.mktemp("prefect-stack")
    restore = os_environ_scoped(PREFECT_HOME=str(folder / "home"), GITHUB_TOKEN=TOKEN)
    stack = Stack(folder)
    try:
        api_url = stack.up(free_ports(1)[0], tie_to_parent=True, say=lambda _m: None, database=_database())
        yield stack, {**stack.env(api_url), "PWD": str(ROOT)}
    finally:
        stack.down()
        restore()


@pytest.fixture(scope="package")
def prefect(prefect_stack) -> dict:
    """The environment of the stack's server and worker."""
    return prefect_stack[1]


@pytest.fixture(scope="package")
def deployed(prefect) -> str:
    """`prefect deploy --all` from the checkout, once; its output."""
    return run(prefect, sys.executable, "-m", "prefect", "--no-prompt", "deploy", "--all")


def _database() -> str:
    try:
        LocalPostgres.binaries()
    except StackError:
        return "sqlite"
    return "postgresql"
