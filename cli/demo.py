"""`golive demo`: a whole go-live of the demo release on the sandbox, watched live.

The sandbox comes up, the go-live flow runs in this process with compressed timings, and the
war room grows on screen from the evidence the flow writes (the screen reads files; the flow
knows nothing of it). Faults named with --fault are switched on when their stage begins. The
sandbox goes down at the end, on failure and on Ctrl-C.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from golive import layout
from golive.profiles import profile_notes
from golive.settings import merge_settings
from golive.signals import readiness_queries
from golive.stage import SHADOW_STAGE, stage_name
from golive.warroom import COLUMNS, cell_text
from sandbox.faults import FAULTS, FaultError, checked_faults

__all__ = ["DemoFault", "demo_settings", "parse_fault", "run_demo"]

# The file each flight-check phase ends with, and what the screen says while it runs.
_FLIGHT_CHECK_PHASES = ((layout.PREFLIGHT, "preflight"), (layout.MICRO_BLAST_RADIUS, "micro blast radius"),
                        (layout.RELEASE_RITUAL, "release ritual (SBOM, provenance, signed go/no-go)"),
                        (layout.FLIGHT_CHECK, "evidence completeness"))


@dataclass(frozen=True)
class DemoFault:
    track: str
    values: dict[str, str]
    at_stage: int | None  # None: from the start; SHADOW_STAGE: the shadow stage


def parse_fault(text: str, at_stage: int | None) -> DemoFault:
    """TRACK:NAME=VALUE[,NAME=VALUE]"""
    track, sep, assignments = text.partition(":")
    if not sep or track not in ("stable", "canary"):
        raise ValueError(f"--fault: expected TRACK:NAME=VALUE with TRACK stable or canary, got {text!r}")
    values = {}
    for item in assignments.split(","):
        name, eq, value = item.partition("=")
        if not eq or not name:
            raise ValueError(f"--fault: expected NAME=VALUE, got {item!r}")
        values[name] = value
    try:
        checked_faults(values, tuple(FAULTS), "unknown fault")
    except FaultError as exc:
        raise ValueError(f"--fault: {exc}") from None
    return DemoFault(track, values, at_stage)


def demo_settings(release: str, sandbox_settings: dict, stage_seconds: float, interval: float,
                  evidence_root: str, pyroscope_url: str | None = None) -> dict:
    """Compressed runbook timings: every stage `stage_seconds`, holds of three intervals, a hold
    budget of two holds, a five-second blast-radius drill (runbook: 30), the shadow stage's
    browser loading a page a second on each track (by default 12 a minute), and the
    judge's minimums scaled down to match. Seconds-long windows
    hold a few dozen requests a track, so a p95 swings far more than over the runbook's minutes:
    the judge's point-estimate tolerance is widened from 25 % to 50 % to match, and so is the shadow
    stage's limit on stable's latency with the mirror on against before it (1.25 x to 1.5 x)."""
    return merge_settings(sandbox_settings, {
        "release": release,
        "policy": {"dwell_seconds": stage_seconds, "final_dwell_seconds": stage_seconds, "interval_seconds": interval,
                   "hold_seconds": 3 * interval, "hold_budget_seconds": 6 * interval,
                   "shadow": {"browser_pages_per_minute": 60.0, "primary_slowdown_max_ratio": 1.5},
                   "judge": {"min_seconds": 3 * interval, "min_requests": 20, "min_keyed_requests": 5,
                             "relative_tolerance": 0.5}},
        "process": {"evidence_root": evidence_root, "blast_radius_seconds": 5,
                    **({"profiling": {"pyroscope_url": pyroscope_url}} if pyroscope_url else {})},
    })


class _Screen:
    """Renders the war room and the current stage's progress from the evidence folder."""

    def __init__(self, folder: Path, settings: dict, faults: list[DemoFault], apply_fault):
        self.folder, self.settings, self.faults, self.apply_fault = folder, settings, list(faults), apply_fault
        self.applied: list[str] = []

    def _rows(self) -> list[dict]:
        try:
            return json.loads((self.folder / layout.WAR_ROOM_JSON).read_text())
        except (OSError, json.JSONDecodeError):
            return []

    def _started_stages(self) -> set[int]:
        return {layout.parse_weight_set(p.name) for p in self.folder.glob(layout.ALL_WEIGHT_SETS)} - {None}

    def _progress(self) -> Text:
        looks = (layout.parse_judge_look(p.name) for p in self.folder.glob(layout.ALL_JUDGE_LOOKS))
        judged = [look for look in looks if look]
        started = self._started_stages()
        if not started:
            phase = next((label for name, label in _FLIGHT_CHECK_PHASES if not (self.folder / name).exists()),
                         "cleared for takeoff")
            return Text(f"flight check: {phase} …", style="dim")
        stage = max(started)
        mine = sorted((window, interval) for percent, window, interval in judged if percent == stage)
        window, done = mine[-1] if mine else (1, 0)
        policy = self.settings["policy"]
        dwell = (policy.get("shadow") or {}).get("dwell_seconds") if stage == SHADOW_STAGE else None
        span = (dwell or policy["dwell_seconds"]) if window == 1 else policy["hold_seconds"]
        total = max(1, round(span / policy["interval_seconds"]))
        filled = min(done, total)
        label = "dwell" if window == 1 else f"hold {window - 1}"
        bar = "█" * (filled * 30 // total) + "░" * (30 - filled * 30 // total)
        return Text(f"stage {stage_name(stage):>6}  {label:<7} {bar} {filled}/{total} intervals")

    def _maybe_inject(self) -> None:
        started = self._started_stages()
        for fault in list(self.faults):
            if fault.at_stage is None or fault.at_stage in started:
                self.apply_fault(fault)
                at = "start" if fault.at_stage is None else stage_name(fault.at_stage)
                self.applied.append(f"{fault.track}: {fault.values} at {at}")
                self.faults.remove(fault)

    def render(self) -> Group:
        self._maybe_inject()
        table = Table(title=f"war room v{self.settings['release']}", expand=False)
        for column in COLUMNS:
            table.add_column(column, justify="right" if column not in ("Time", "Decision") else "left")
        for row in self._rows():
            style = {"Proceed": "green", "Hold": "yellow", "Rollback": "bold red"}.get(row["Decision"])
            table.add_row(*(cell_text(c, row.get(c)) for c in COLUMNS), style=style)
        notes = [Text(f"fault injected: {a}", style="magenta") for a in self.applied]
        return Group(table, self._progress(), *notes)


def _ensure_signing_key(console: Console) -> None:
    """The ritual signs with the default local key; the demo makes one on first use."""
    from golive.settings import SigningSettings
    from golive.signing import generate_key

    signing = SigningSettings()
    if not Path(signing.key_path).exists():
        private_path, _ = generate_key(Path(signing.key_path).parent)
        console.print(f"made a signing key for the demo: {private_path} (`golive keys init` makes one yourself)")


def _profile_lines(folder: Path) -> list[str]:
    """What the profiles of each stage and its holds show, from the stage records: the frames that
    grew in the canary, the advice (never applied: a person reads it) and the profiles not taken.
    A stage whose profiles show nothing of these has no line."""
    lines = []
    records = [*folder.glob(layout.stage_record(SHADOW_STAGE)), *folder.glob(layout.stage_record("*"))]
    for record in sorted(records, key=lambda p: p.stat().st_mtime):
        try:
            stage = json.loads(record.read_text())
            cuts = [(f"hold {i}", d["profile"]) for i, d in enumerate(stage.get("decisions") or [], 1)
                    if isinstance(d, dict) and d.get("profile")] + [("end", stage.get("profile") or {})]
        except (OSError, json.JSONDecodeError, AttributeError, TypeError):
            continue
        for when, profile in cuts:
            if profile.get("recommendations") or profile.get("not_taken") or (profile.get("diff") or {}).get("grown"):
                lines += [f"profile ({record.stem}, {when}): {note}" for note in profile_notes(profile)]
    return lines


def _shadow_lines(folder: Path) -> list[str]:
    """The shadow stage's own checks at its last decision (the war room's `shadow` lines)."""
    try:
        rows = json.loads((folder / layout.WAR_ROOM_JSON).read_text())
        last = [row for row in rows if row.get("Stage") == stage_name(SHADOW_STAGE) and row.get("shadow")][-1]
    except (OSError, json.JSONDecodeError, AttributeError, TypeError, IndexError):
        return []
    return [f"shadow ({last.get('Decision')}): {note}" for note in last["shadow"]]


def _verify_line(folder: Path) -> str:
    from golive.settings import SigningSettings
    from golive.signing import load_public_key
    from golive.verify import verify_folder

    report = verify_folder(folder, load_public_key(SigningSettings().public_path.read_bytes()))
    if report.ok:
        return f"verifies: {report.links} chain links, {report.signatures} signatures"
    return f"does NOT verify: {'; '.join(report.problems[:3])}"


def run_demo(release: str, faults: list[DemoFault], stage_seconds: float, interval: float, rate: float,
             evidence_root: str, console: Console | None = None, pyroscope_url: str | None = None) -> int:
    from cli.prefect_env import configure_prefect, start_a_server_of_its_own

    # The demo's Prefect database lives and dies with the demo, as its sandbox does: a demo that
    # was killed leaves no run "Running" and no lock taken for the next one to be refused by.
    prefect_home = Path(tempfile.mkdtemp(prefix="golive-demo-prefect-"))
    # Registered before Prefect starts its temporary server, so removed after that server stops.
    atexit.register(shutil.rmtree, prefect_home, ignore_errors=True)
    configure_prefect(prefect_home)
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")  # the screen tells the story
    console = console or Console(width=None if Console().is_terminal else 120)
    from sandbox.control import Sandbox, default_workdir

    # The server boots while the sandbox does: neither needs the other until the go-live.
    server = start_a_server_of_its_own()
    with console.status("starting the sandbox (Prometheus, nginx, stable and canary, load) and a temporary "
                        "Prefect server …"):
        sandbox = Sandbox.up(default_workdir().with_name(default_workdir().name + "-demo"), release=release,
                             rate=rate, probe_rate=5, free_ports=True, owner_pid=os.getpid(),
                             ready_queries=readiness_queries())
    try:
        _ensure_signing_key(console)
        with console.status("waiting for the temporary Prefect server …"):
            server.ready()
        settings = demo_settings(release, sandbox.golive_settings(), stage_seconds, interval, evidence_root,
                                 pyroscope_url)
        folder = Path(evidence_root) / f"v{release}"
        from golive.settings import load_settings

        stages = "→".join(stage_name(p) for p in load_settings(settings).planned_stages)
        console.print(f"sandbox up; go-live of v{release}: stages {stages}, {stage_seconds:g} s each, "
                      f"judged every {interval:g} s")

        def apply(fault: DemoFault) -> None:
            sandbox.set_faults(fault.track, fault.values)

        screen = _Screen(folder, settings, faults, apply)
        from cli.interrupt import Interrupted, run_rolling_back_on_interrupt
        from flows.go_live import go_live

        try:
            with Live(screen.render(), console=console, refresh_per_second=2) as live:
                state = run_rolling_back_on_interrupt(
                    load_settings(settings), lambda: go_live(release, settings=settings, return_state=True),
                    say=console.print, tick=lambda: live.update(screen.render()),
                    grace_seconds=interval + 15)
        except Interrupted as exc:
            console.print(f"[red]interrupted[/red]; rollback: {exc}; evidence: {folder}")
            return 130
        oneliner_file = folder / layout.RELEASE_ONELINER
        oneliner = oneliner_file.read_text().strip() if oneliner_file.exists() else ""
        files = len([p for p in folder.rglob("*") if p.is_file()])
        color = "green" if state.name == "Live" else "red"
        console.print(f"[{color}]{state.name}[/{color}]: {state.message}")
        if oneliner:
            console.print(oneliner)
        for line in _shadow_lines(folder) + _profile_lines(folder):
            console.print(line, markup=False)
        console.print(f"evidence: {folder} ({files} files; {_verify_line(folder)})")
        return 0 if state.name == "Live" else 1
    finally:
        with console.status("stopping the sandbox …"):
            sandbox.down()
