"""The one real sandbox of a test run: free loopback ports, owned by this process (it stops
itself if the run dies), stopped at the end whatever happened. Started only when a test asks."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from golive.signals import readiness_queries
from sandbox.control import Sandbox

pytest_plugins = ["tests.prefect_harness"]


def pytest_configure(config) -> None:
    """One SBOM cache for the whole run, whatever folder a go-live runs in (a demo in a test's
    folder, the README's commands in a checkout of their own): describing and validating the
    environment costs some 30 CPU seconds, and a new cache pays them again. The tests of the
    cache itself (`tests/tasks/test_sbom.py`, the flight check's reproducible SBOM) use their own."""
    os.environ.setdefault("GOLIVE_CACHE_DIR", str(Path(__file__).resolve().parent.parent / ".golive" / "cache"))


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """`--dist loadfile` hands out the heaviest files first, the deployments tests as one unit
    (tests/scheduling.py); any other `--dist` is xdist's own."""
    if config.getvalue("dist") != "loadfile":
        return None
    from tests.scheduling import HeaviestFirst

    return HeaviestFirst(config, log)


@pytest.fixture(scope="session")
def sandbox(tmp_path_factory) -> Sandbox:
    running = Sandbox.up(
        tmp_path_factory.mktemp("sandbox"), free_ports=True, owner_pid=os.getpid(), seed=7, rate=50,
        probe_rate=5, timeout=45, ready_queries=readiness_queries(),
    )
    try:
        yield running
    finally:
        running.down()


@pytest.fixture
def canary_weight(sandbox):
    """Set a weight for one test; back to 0, with the canary's faults cleared, afterwards."""
    def set_to(weight: int) -> int:
        return sandbox.set_weight(weight)

    try:
        yield set_to
    finally:
        sandbox.clear_faults("canary")
        sandbox.set_weight(0)


@pytest.fixture(scope="session")
def kube_emulator():
    """The Kubernetes API emulator of this test run (kmock, real HTTP on a free loopback port)."""
    from tests.emulators.kubernetes import RunningEmulator

    emulator = RunningEmulator()
    try:
        yield emulator
    finally:
        emulator.stop()


@pytest.fixture
def cluster(kube_emulator, tmp_path, request):
    """The example release's objects in a namespace of this test's own, and the `kubernetes`
    settings (a kubeconfig file) that reach them."""
    from tests.emulators.kubernetes import seed_release

    namespace = "t-" + "".join(c if c.isalnum() else "-" for c in request.node.name.lower())[:50].strip("-")
    seed_release(kube_emulator, namespace)
    kubeconfig = kube_emulator.write_kubeconfig(tmp_path / "kubeconfig", namespace)
    return {"namespace": namespace, "kubeconfig": str(kubeconfig), "container": "spark"}


@pytest.fixture(scope="session")
def signing_key(tmp_path_factory) -> dict:
    """A P-256 key pair of this test run, as the `signing` settings that name it."""
    from golive.signing import generate_key

    private_path, public_path = generate_key(tmp_path_factory.mktemp("keys"))
    return {"key_path": str(private_path), "public_key_path": str(public_path)}


@pytest.fixture
def github():
    """The GitHub API stand-in on a free loopback port, with three labelled open pull requests,
    one unlabelled, a labelled issue (not a pull request) and a labelled closed pull request."""
    from tests.fakes.github_api import FakeGitHub, Item, serve

    fake = FakeGitHub(items={
        1: Item(1, {"hold-for-canary"}), 2: Item(2, {"hold-for-canary", "backend"}), 3: Item(3, set()),
        4: Item(4, {"hold-for-canary"}, is_pull_request=False), 5: Item(5, {"hold-for-canary"}, state="closed"),
        6: Item(6, {"hold-for-canary"}),
    })
    server, thread = serve(fake)
    try:
        yield fake
    finally:
        server.should_exit = True
        thread.join(timeout=10)
