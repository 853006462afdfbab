"""What the flow tests share: the demo's compressed settings on the sandbox, and watchers that act
on the evidence as a flow writes it."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

from golive import layout


def flow_settings(sandbox, signing_key: dict, evidence_root: Path, stages: list[int], interval: float = 3.0,
                  profiling: bool = False, shadow: bool = False, browser: bool = False, **sections: dict) -> dict:
    """The demo's compressed timings on the sandbox: stages and holds of three intervals, a
    two-second blast-radius drill, the test run's signing key, and a release repository of the
    test's own (a Live go-live tags it); `sections` change fields of theirs (`policy={...}`).
    The stages' profiles, the shadow stage and its browser check (all on by default for users)
    only where a test asks for them: a test of something else need not pay py-spy at every
    stage, a stage more, nor a browser."""
    from cli.demo import demo_settings
    from golive.settings import merge_settings
    from sandbox.release_repo import create_release_repo

    settings = demo_settings("1.4.0", sandbox.golive_settings(), 3 * interval, interval, str(evidence_root))
    repo = create_release_repo(Path(evidence_root).parent / f"{Path(evidence_root).name}-source", "1.4.0", "1.3.2")
    return merge_settings(settings, {
        "policy": {"stages": stages, "shadow": {**settings["policy"].get("shadow", {}), "enabled": shadow}},
        "process": {"blast_radius_seconds": 2, "signing": signing_key, "git": {"repo": str(repo), "remote": "origin"},
                    "profiling": {"enabled": profiling}},
        "target": {"browser_pages": settings["target"].get("browser_pages", []) if browser else []},
    }, sections)


class EvidenceWatcher:
    """Runs `action` once, in a thread, when `ready(folder)` first holds: faults at a stage's start."""

    def __init__(self, folder: Path, ready: Callable[[Path], bool], action: Callable[[], None]):
        self.folder, self.ready, self.action = folder, ready, action
        self.fired_at: float | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            if self.ready(self.folder):
                self.action()
                self.fired_at = time.time()
                return
            time.sleep(0.2)

    def __enter__(self) -> EvidenceWatcher:
        self._thread.start()
        return self

    def __exit__(self, *_exc) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def stage_started(percent: int) -> Callable[[Path], bool]:
    return lambda folder: (folder / layout.weight_set(percent)).exists()
