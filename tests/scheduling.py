"""How the two test workers share the files (`--dist loadfile`): a file at a time, the heaviest
first, so that no long file is left to run alone at the end while the other worker waits; and
the deployments tests as one unit, on one worker, so that the run starts one Prefect stack
(PostgreSQL, server, worker) and not one per worker.

The order is a measured one (seconds a file takes on two busy cores): a file missing from it, or
one that got faster, only costs time, never a test. Files not listed follow in xdist's order
(the most tests first)."""

from __future__ import annotations

from xdist.scheduler import LoadFileScheduling

# Run as one unit: their tests share a session fixture costly to start twice.
ONE_UNIT = ("tests/deployments/",)

# Seconds each took in a full run on two busy cores, the slowest first.
HEAVIEST_FIRST = (
    "tests/deployments/",  # ~300 s: the README's Prefect path, the cancel and kill endings
    "tests/flows/test_one_writer.py",  # ~150 s: `golive demo` and `golive go-live` processes
    "tests/flows/test_after_live.py",  # ~125 s
    "tests/sandbox/test_sandbox.py",  # ~120 s
    "tests/flows/test_go_live.py",  # ~95 s: a sandbox of its own
    "tests/flows/test_go_live_third_party.py",  # ~80 s: two sandboxes of their own
    "tests/flows/test_safe_endings.py",  # ~80 s
    "tests/flows/test_game_day.py",  # ~75 s
    "tests/flows/test_flight_check.py",  # ~75 s
    "tests/flows/test_alerts_gate.py",  # ~65 s
    "tests/flows/test_go_live_kubernetes.py",  # ~60 s
    "tests/cli/test_attest.py",  # ~35 s
)


def _rank(scope: str) -> int:
    return next((i for i, prefix in enumerate(HEAVIEST_FIRST) if scope.startswith(prefix)), len(HEAVIEST_FIRST))


class HeaviestFirst(LoadFileScheduling):
    """xdist's `loadfile`, with the units above and the heaviest unit handed out first."""

    def _split_scope(self, nodeid: str) -> str:
        path = super()._split_scope(nodeid)
        return next((unit for unit in ONE_UNIT if path.startswith(unit)), path)

    def _assign_work_unit(self, node) -> None:
        heaviest = min(self.workqueue, key=_rank)  # the first of equals: xdist's own order among the rest
        self.workqueue.move_to_end(heaviest, last=False)
        super()._assign_work_unit(node)
