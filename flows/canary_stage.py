"""canary-stage: one step of the canary, as the runbook does it.

(A person approves →) the canary's rollout is fit → set the weight, with the go-live's fencing
generation → read it back → each interval: the target still ours and at the stage's weight,
the traffic really split that way, the rollout and the signals watched, judged → the stage's gate
(`golive.stage`) says continue, Proceed, Hold, Rollback (the `rollback` flow, at once) or ask a
person. Any other way out of the stage, an error or a cancel, rolls back first.

A stage whose write the router refuses as fenced, or that finds a newer generation at the target
when it looks, has been replaced (a rollback, an operator, a newer go-live took the target while
it was paused): it ends `superseded` at once, touching nothing. Never retried.
"""

from __future__ import annotations

import json
import time
from dataclasses import replace
from datetime import datetime, timezone

from prefect import flow, get_run_logger
from prefect.exceptions import FlowPauseTimeout
from prefect.flow_runs import pause_flow_run

from golive import layout, plots
from golive.alert_webhook import began_during
from golive.evidence import EvidenceLedger
from golive.profiles import (
    ProfileError, diff_profiles, gc_pause_delta, parse_speedscope, profile_notes, profiled_triggers,
    profiler_time_limit, recommend,
)
from golive.models import RollbackReport, RolloutObservation, SignalWindow, StageResult
from golive.rollback_report import render_profile_addendum
from golive.rollout import RolloutWatch
from golive.scenario import Scenario
from golive.settings import GoLiveSettings
from golive.signals import by_role
from golive.stage import SHADOW_STAGE, StageMachine, Step, stage_name
from golive.triggers import describe
from golive.validation import error_line
from golive.warroom import WarRoomRow
from flows import subflows_without_heartbeats
from flows.rollback import roll_back, rollback_outcome
from tasks.alerts import critical_alerts_firing
from tasks.approval import StageApproval
from tasks.artifacts import publish_stage
from tasks.evidence import ReleaseFolder, add_war_room_row, append_text, update_war_room_row
from tasks.gate import judge_window
from tasks.http_client import clients_for_this_run
from tasks.kubernetes import read_kubernetes_rollout
from tasks.notify import announce
from tasks.plots import plot_stage
from tasks.profiler import (
    ProfileSampling, TakenProfile, discard_scratch, start_profiling, stop_profiling, tell_to_stop,
)
from tasks.prometheus import observe_share, query_signals
from tasks.pyroscope import push_profile
from tasks.router import RouterFenced, read_weight, set_weight
from tasks.router_base import Deadline
from tasks.service import check_version, read_gc_pauses, read_service_rollout

# Prometheus scrapes every second; give an interval's last samples time to land before reading it.
SCRAPE_SETTLE_SECONDS = 1.5
# All of a stage's pushes to Pyroscope together, once the stage has ended (one attempt each).
PYROSCOPE_BUDGET_SECONDS = 20.0
PYROSCOPE_TIMEOUT_SECONDS = 10.0


class _StageProfiles:
    """py-spy on both tracks from the stage's start to its end, cut at each Hold whose signals are
    latency, event loop or GC: each cut's profiles, flame graphs, difference and advice go to the
    evidence (and to Pyroscope when set). Anything missing is written down as not taken."""

    def __init__(self, settings: GoLiveSettings, percent: int, folder: str, logger):
        self.settings, self.percent, self.folder, self.logger = settings, percent, folder, logger
        self.config = settings.process.profiling
        catalogue = settings.policy.catalogue()
        latency = by_role(catalogue, "latency")
        self.profiled = {s.name for s in catalogue} & (
            {"event_loop_p95_ms", "gc_pause_avg_ms"} | ({latency.name} if latency else set()))
        self.samplings: list[ProfileSampling] = []
        self.versions = {"canary": settings.release}
        self.gc_before: dict = {}
        self.unpushed: list[dict] = []  # each cut's (and the end's) profiles, for Pyroscope after the stage

    @property
    def name(self) -> str:
        return stage_name(self.percent)

    def start(self) -> None:
        """py-spy on both tracks. Whatever fails is that track's "not taken" line, never the stage's
        end; a profiler is kept in `samplings` as soon as it runs, so that a later failure cannot
        orphan it."""
        if not self.config.enabled:
            return
        target, policy = self.settings.target, self.settings.policy
        if self.config.pyroscope_url and "stable" not in self.versions:
            try:
                self.versions["stable"] = check_version.fn(target.stable_url).version or "unknown"
            except Exception as exc:
                self.logger.warning("stage %s: stable's version unread: %s", self.name, error_line(exc))
                self.versions["stable"] = "unknown"
        limit = profiler_time_limit(policy.stage_plan(self.percent).max_dwell_seconds, policy.hold_budget_seconds,
                                    policy.approval_timeout_seconds)
        for track, url in (("stable", target.stable_url), ("canary", target.canary_url)):
            try:
                sampling = start_profiling(track, url, self.config.pids.get(track), self.config.rate_hz,
                                           self.config.py_spy, limit)
            except Exception as exc:
                sampling = ProfileSampling(track=track, problem=f"{track}: the profiler could not start: "
                                                                f"{error_line(exc)}")
            self.samplings.append(sampling)
            if sampling.problem:
                self.logger.warning("stage %s: %s", self.name, sampling.problem)
        self.gc_before = self.gc_pauses()

    def gc_pauses(self) -> dict:
        """Each track's GC pauses per generation so far (None for a track that did not answer, or
        answered something unreadable)."""
        if self.config.gc_pause_metric is None:
            return {}
        target, pauses = self.settings.target, {}
        for track, url in (("stable", target.stable_url), ("canary", target.canary_url)):
            try:
                pauses[track] = read_gc_pauses.fn(url, self.config.gc_pause_metric)
            except Exception as exc:
                self.logger.warning("stage %s: %s GC pauses unread: %s", self.name, track, error_line(exc))
                pauses[track] = None
        return pauses

    def stop(self) -> list[TakenProfile]:
        samplings, self.samplings = self.samplings, []
        for sampling in samplings:
            tell_to_stop(sampling)
        taken = []
        for sampling in samplings:
            state = stop_profiling(sampling, return_state=True)
            taken.append(state.result() if state.is_completed() else
                         TakenProfile(track=sampling.track, problem=f"{sampling.track}: {state.message}"))
        return taken

    def cut(self, signals: dict, triggers: list[str], hold: int) -> dict | None:
        """At a Hold: the profiles so far, written, and sampling again for the rest of the stage."""
        taken, gc_before = self.stop(), self.gc_before
        self.start()
        return self.write(taken, signals, triggers, hold, gc_before)

    def write(self, taken: list[TakenProfile], signals: dict, triggers: list[str],
              hold: int | None = None, gc_before: dict | None = None) -> dict | None:
        """What was taken and what grew, into the evidence; None when profiling is off. A profile
        that cannot be written is a warning and a line in the summary, never the stage's end."""
        if not taken:
            return None
        try:
            return self._write(taken, signals, triggers, hold, self.gc_before if gc_before is None else gc_before)
        except Exception as exc:
            self.logger.warning("stage %s: the profiles could not be written: %s", self.name, error_line(exc))
            return {"error": error_line(exc)}

    def _write(self, taken: list[TakenProfile], signals: dict, triggers: list[str], hold: int | None,
               gc_before: dict) -> dict:
        ledger, summary, profiles = EvidenceLedger(self.folder), {"files": {}, "not_taken": {}}, {}
        for profile in taken:
            if profile.problem:
                summary["not_taken"][profile.track] = profile.problem
                discard_scratch(profile)
                continue
            try:
                document = json.loads(open(profile.output, "rb").read())
                parsed = parse_speedscope(document, profile.track, profile.seconds, profile.rate_hz)
            except (OSError, ValueError, ProfileError) as exc:
                summary["not_taken"][profile.track] = f"{profile.track}: unreadable profile: {error_line(exc)}"
                continue
            finally:
                discard_scratch(profile)
            name = layout.profile_speedscope(self.percent, profile.track, hold)
            ledger.write_json(name, document)
            picture = layout.profile_flamegraph(self.percent, profile.track, hold)
            ledger.write_bytes(picture, plots.flamegraph_png(
                parsed.stacks, f"{profile.track} at {self.name} ({parsed.samples} samples, "
                f"{profile.rate_hz} Hz, {profile.seconds:.0f} s)"))
            summary["files"][profile.track] = [name, picture]
            profiles[profile.track] = (parsed, profile)
        stood_on = profiled_triggers(signals, triggers, self.profiled)
        summary["signals"] = stood_on
        diff_name = layout.profile_diff(self.percent, hold)
        if len(profiles) == 2:
            view = diff_profiles(profiles["canary"][0], profiles["stable"][0], stage_percent=self.percent)
            gc_after = self.gc_pauses()
            gc = {track: gc_pause_delta(gc_before.get(track), gc_after.get(track)) for track in gc_after} or None
            summary["diff"] = {k: view[k] for k in ("comparable", "reason", "grown")}
            summary["recommendations"] = recommend(view, gc, stood_on, {"profile_diff": diff_name,
                                                                        "gc_pauses": f"{diff_name}: gc_pauses"})
            ledger.write_json(diff_name, {**view, "gc_pauses": gc, "signals": stood_on,
                                          "recommendations": summary["recommendations"]})
            summary["files"]["diff"] = diff_name
            if self.config.pyroscope_url is not None:
                self.unpushed.append(profiles)
        return summary

    def push(self) -> None:
        """The stage's profiles to Pyroscope, once the stage has ended (a push never delays a look or
        a rollback), within `PYROSCOPE_BUDGET_SECONDS` in all; what does not fit is a warning."""
        unpushed, self.unpushed = self.unpushed, []
        url = self.config.pyroscope_url
        deadline = time.monotonic() + PYROSCOPE_BUDGET_SECONDS
        for profiles in unpushed:
            for track, (parsed, taken) in profiles.items():
                left = deadline - time.monotonic()
                if left <= 0:
                    self.logger.warning("stage %s: %s profile not pushed: the %g s for Pyroscope are spent",
                                        self.name, track, PYROSCOPE_BUDGET_SECONDS)
                    continue
                tags = {"service": self.settings.target.service, "track": track, "stage": self.name.rstrip("%"),
                        "version": self.versions.get(track, "unknown")}
                state = push_profile(url, self.config.pyroscope_app, parsed, tags, taken.started_at,
                                     taken.ended_at, taken.rate_hz, min(PYROSCOPE_TIMEOUT_SECONDS, left),
                                     self.config.pyroscope_auth_secret_block, return_state=True)
                if not state.is_completed():
                    self.logger.warning("stage %s: %s profile not pushed: %s", self.name, track, state.message)


def _sleep_until(at: float) -> None:
    delay = at - time.time()
    if delay > 0:
        time.sleep(delay)


class StageRun:
    """One stage's moving parts: its settings, evidence folder, record, gate and fence."""

    def __init__(self, settings: GoLiveSettings, percent: int, generation: int, shadow_proven: list[str] = ()):
        self.settings, self.percent, self.generation = settings, percent, generation
        self.shadow_proven = frozenset(shadow_proven)  # what the shadow stage showed green (golive.judge)
        self.folder = ReleaseFolder.of(settings)
        self.logger = get_run_logger()
        self.gate = StageMachine(settings.policy.stage_plan(percent), started_at=time.time())
        self.result = StageResult(stage=percent, outcome="proceed", started_at=time.time(), ended_at=time.time(),
                                  generation=generation)
        self.rollout = RolloutWatch(settings.release, settings.policy.readiness_failure_threshold)
        self.profiles = _StageProfiles(settings, percent, str(self.folder), self.logger)

    @property
    def name(self) -> str:
        return stage_name(self.percent)

    def run(self) -> StageResult:
        if self.settings.policy.approve_each_stage and (ended := self.wait_for_approval()):
            return ended
        if ended := self.canary_fit_to_start():
            return ended
        self.profiles.start()
        if ended := self.raise_weight():
            return ended
        self.logger.info("stage %s: weight in force, watching %d intervals of %gs", self.name,
                         self.gate.intervals_in_window, self.settings.policy.interval_seconds)
        while True:
            tick = self.gate.next_tick
            _sleep_until(tick + SCRAPE_SETTLE_SECONDS)
            if ended := self.look(tick):
                return ended

    def canary_fit_to_start(self) -> StageResult | None:
        """Before any traffic moves: observe the canary (once a second, while it reads not ready,
        up to the readiness threshold); a trigger rolls back."""
        for attempt in range(self.settings.policy.readiness_failure_threshold):
            rollout = self.observe_rollout()
            if attempt == 0:
                self.folder.record(layout.rollout(self.percent), rollout or {"observed": False})
            if fired := self.rollout.observe(rollout):
                return self.end("rollback", "; ".join(fired.values()), list(fired),
                                detected_at=rollout.at if rollout else time.time())
            if self.rollout.not_ready_in_a_row == 0:
                return None
            time.sleep(1.0)
        return None

    def superseded(self) -> StageResult | None:
        """The early exit: the target's fence read at each look. Another generation there means a
        newer writer took the target (this process may have been paused): stop, touching nothing.
        The safety is the router's refusal of a fenced write; this only stops sooner."""
        reading = read_weight(self.settings.target.router, return_state=True)
        if not reading.is_completed():
            self.logger.warning("stage %s: the router could not be read at this look: %s", self.name,
                                reading.message)
            return None
        now = reading.result()
        if now.fence is not None and now.fence.generation != self.generation:
            return self.end("superseded", f"fenced off by a newer writer: {now.fence.describe()}",
                            superseded_by=now.fence.describe())
        if now.in_force != self.percent:
            return self.end("rollback", f"asked for {self.percent}, router serves {now.in_force}",
                            ["weight-not-applied"], detected_at=now.at)
        return None

    def look(self, tick: float) -> StageResult | None:
        """One interval: the target's fence and weight, the split, the rollout, the signals, the
        judge and the gate."""
        if ended := self.superseded():
            return ended
        if ended := self.checks_of_this_kind(tick):
            return ended
        window = self.query_signals(tick)
        if window.answered and not self.result.share_ok and (ended := self.check_share(tick)):
            return ended
        rollout = self.observe_rollout()
        fired = self.rollout.observe(rollout)
        verdict = judge_window(window.scenario)
        self.folder.record(layout.judge_look(self.percent, self.gate.window_no, self.gate.looks + 1), {
            "window": [self.gate.window_start, tick], "answered": window.answered, "verdict": verdict,
            "rollout": rollout.model_dump(mode="json") if rollout else None, "rollout_triggers": list(fired)})
        if fired:
            self.logger.warning("stage %s: the canary's rollout is not fit: %s", self.name,
                                "; ".join(fired.values()))
            return self.end("rollback", "; ".join(fired.values()), list(fired), verdict["signals"],
                            rollout.at if rollout else tick)
        alerts = self.critical_alerts()
        if alerts:
            return self.end("rollback", f"critical alert firing: {'; '.join(alerts)}", ["critical-alert"],
                            verdict["signals"], tick)
        window_start = self.gate.window_start
        step = self.gate.observe(tick, verdict["decision"], {n: v["verdict"] for n, v in verdict["signals"].items()},
                                 verdict["triggers"],
                                 window.answered and alerts is not None and self.result.share_ok)
        if step.action == "continue" or (step.action == "extend" and self.result.decisions
                                         and self.result.decisions[-1]["decision"] == "extend"):
            return None
        self.decide(step, verdict, window, window_start, tick)
        if step.action == "rollback":
            return self.end("rollback", step.reason, list(step.triggers), verdict["signals"], tick)
        if step.action == "proceed":
            return self.end("proceed", step.reason if step.deferred else verdict["reason"])
        if step.action == "pause":
            return self.ask_when_inconclusive(step)
        return None

    def checks_of_this_kind(self, tick: float) -> StageResult | None:
        """What a kind of stage looks at beside the signals (the shadow stage's drift and stable's
        latency); None: nothing ends the stage."""
        return None

    def browser_checked(self) -> bool:
        """The shadow stage's browser check is loading the tracks' pages (a canary stage has none)."""
        return False

    def row_notes(self) -> dict[str, list[str]]:
        """Lines a kind of stage adds under its war-room rows, by key (`golive.warroom`): the
        shadow stage's checks; none for a canary stage."""
        return {}

    def decide(self, step: Step, verdict: dict, window: SignalWindow, window_start: float, tick: float) -> None:
        """A decision is evidence: the snapshot, a war-room row, the stage's artifact."""
        catalogue = self.settings.policy.catalogue()
        profile = None
        if step.action == "hold" and profiled_triggers(verdict["signals"], step.triggers, self.profiles.profiled):
            profile = self.profiles.cut(verdict["signals"], list(step.triggers), self.gate.holds)
        self.folder.record(layout.snapshot(self.percent, self.gate.holds if step.action == "hold" else None), {
            "profile": profile,
            "stage_percent": self.percent, "window": [window_start, tick], "decision": step.action,
            "reason": step.reason, "triggers": list(step.triggers), "verdict": verdict,
            # The signals judged (the shadow stage's: those a mirror shows), each with its line.
            "thresholds": {s.name: {"rule": s.rule, "threshold": s.threshold} for s in window.scenario.catalogue},
            "series": window.model_dump(mode="json"),
        })
        row = WarRoomRow.from_verdict(datetime.now(timezone.utc), self.percent, step.action.capitalize(),
                                      verdict["signals"], series=window.scenario.to_dict()["signals"],
                                      catalogue=catalogue)
        if notes := profile_notes(profile):
            row["profile"] = notes
        if step.deferred:
            row["gate"] = [step.reason]
        row.update(self.row_notes())
        add_war_room_row(str(self.folder), row)
        if step.action != "pause":  # a pause is announced where it asks
            announce(self.settings, step.action, self.percent, f"{verdict['reason']}; {step.reason}", row)
        publish_stage(self.settings.release, self.percent, step.action, verdict["reason"], verdict["signals"], row)
        self.result.decisions.append({"at": tick, "decision": step.action, "reason": verdict["reason"],
                                      "gate": step.reason, "triggers": list(step.triggers),
                                      **({"deferred": list(step.deferred), "deferred_to": self.gate.plan.defers_to}
                                         if step.deferred else {}),
                                      "signals": verdict["signals"], "profile": profile})
        self.result.holds = self.gate.holds
        self.logger.info("stage %s: %s (%s; %s)", self.name, step.action.upper(), verdict["reason"], step.reason)

    def raise_weight(self) -> StageResult | None:
        deadline = Deadline.after(self.settings.policy.rollback_budget_seconds).at
        try:
            change = set_weight(self.settings.target.router, self.percent, self.generation, deadline)
        except RouterFenced as exc:
            return self.end("superseded", f"the router refused the weight {self.percent}: {exc}",
                            superseded_by=exc.fence.describe())
        self.folder.record(layout.weight_set(self.percent), change)
        readback = read_weight(self.settings.target.router)
        self.folder.record(layout.weight_readback(self.percent), readback)
        self.result.weight_verified = readback.in_force == self.percent
        if not self.result.weight_verified:
            return self.end("rollback", f"asked for {self.percent}, router serves {readback.in_force}",
                            ["weight-not-applied"], detected_at=readback.at)
        self.gate.start(readback.at)
        return None

    def check_share(self, tick: float) -> StageResult | None:
        # From one scrape after the change: requests served just before it are counted at the next scrape.
        share = observe_share(self.settings.prometheus, self.percent, self.settings.policy.weight_tolerance_points,
                              self.gate.started_at + SCRAPE_SETTLE_SECONDS, tick)
        self.folder.record(layout.traffic_share(self.percent), share)
        self.result.share_ok = share.ok
        if share.ok or share.observed_pct is None:
            # No user request counted yet (Prometheus just back from a gap, say): not verified, so
            # looked at again next interval; the gate does not proceed on an unverified split.
            return None
        return self.end("rollback", f"observed {share.observed_pct}% of user traffic on the canary "
                        f"(tolerance ±{share.tolerance_points} points)", ["weight-not-applied"], detected_at=tick)

    def query_signals(self, tick: float) -> SignalWindow:
        policy = self.settings.policy
        start, interval, mirrored = self.gate.window_start, policy.interval_seconds, self.percent == SHADOW_STAGE
        browser = mirrored and self.browser_checked()
        state = query_signals(self.settings.prometheus, policy, self.percent, start, tick, mirrored=mirrored,
                              browser=browser, return_state=True)
        if state.is_completed():
            window = state.result()
            if self.shadow_proven and not mirrored:
                window.scenario = replace(window.scenario, shadow_proven=self.shadow_proven)
            return window
        self.logger.warning("stage %s: Prometheus did not answer for the interval ending %s", self.name,
                            tick)
        return SignalWindow(stage_percent=self.percent, start=start, end=tick, interval_seconds=interval,
                            answered=False, scenario=Scenario(self.percent, interval, {},
                                                              policy.judged(mirrored, browser),
                                                              policy.judge_policy(), mirrored, browser))

    def critical_alerts(self) -> list[str] | None:
        """The service's critical alerts firing on the canary or the whole service (an alert of
        stable's alone is the environment's, not the release's); None when no alert source
        answered: not knowing is not "no alerts", and the gate holds on it."""
        state = critical_alerts_firing(self.settings.prometheus, self.settings.target.service, return_state=True)
        if not state.is_completed():
            self.result.alerts_unread += 1
            self.logger.warning("stage %s: no alert source answered: %s", self.name, state.message)
            return None
        # An alert that began before this stage was checked at every interval of the stages before:
        # one still firing from before the go-live is the environment's (another run's leftover).
        # One whose start is unknown counts as new.
        firing = [f"{a.name}" + (f" ({a.signal}, {a.track})" if a.signal else "") for a in state.result()
                  if a.track in (None, "canary") and began_during(a.started, self.result.started_at)]
        self.result.critical_alerts = sorted(set(self.result.critical_alerts) | set(firing))
        return firing

    def observe_rollout(self) -> RolloutObservation | None:
        """The canary's Deployment (on Kubernetes) or process (the sandbox); None when it cannot be read."""
        if self.settings.target.router.on_kubernetes:
            state = read_kubernetes_rollout(self.settings.target.router.kubernetes, return_state=True)
        else:
            state = read_service_rollout(self.settings.target.canary_url, return_state=True)
        return state.result() if state.is_completed() else None

    def ask(self, key: str, description: str) -> StageApproval | None:
        """Pause until a person answers (Prefect's UI or `golive approve`); None when nobody did in time."""
        announce(self.settings, "paused", self.percent, description)
        try:
            return pause_flow_run(wait_for_input=StageApproval.with_initial_data(description=description),
                                  timeout=int(max(1, self.settings.policy.approval_timeout_seconds)), key=key)
        except FlowPauseTimeout:
            return None

    def wait_for_approval(self) -> StageResult | None:
        """Before raising the weight: each unanswered wait is a Hold, within the stage's hold budget."""
        for asked in range(1, 10_000):
            approval = self.ask(f"approve-stage-{self.percent}-{asked}", f"Raise the canary to {self.percent} %?")
            if approval is None:
                step = self.gate.waited_for_approval(self.settings.policy.approval_timeout_seconds)
                add_war_room_row(str(self.folder), WarRoomRow.from_verdict(datetime.now(timezone.utc), self.percent,
                                                                           step.action.capitalize(), {}))
                if step.action == "rollback":
                    return self.end("rollback", step.reason, list(step.triggers))
                continue
            return self.answered(approval)
        raise AssertionError("unreachable: the hold budget ends the waits")

    def ask_when_inconclusive(self, step: Step) -> StageResult:
        """Too little traffic for the stage's maximum dwell: a person decides, never a silent proceed."""
        seen = [f"{name}: {v['detail']}" for name, v in self.result.decisions[-1]["signals"].items()
                if v["verdict"] == "insufficient"]
        approval = self.ask(f"inconclusive-stage-{self.percent}",
                            f"Stage {self.percent} % is inconclusive: {step.reason}. " + "; ".join(seen)
                            + ". Proceed anyway (approve) or roll back (reject)?")
        if approval is None:
            return self.end("rollback", f"{step.reason}; nobody answered within "
                            f"{self.settings.policy.approval_timeout_seconds:g} s", ["hold-budget-exhausted"])
        ended = self.answered(approval)
        return ended or self.end("proceed", f"inconclusive, proceeded on {approval.approver}'s approval")

    def answered(self, approval: StageApproval) -> StageResult | None:
        self.folder.record(layout.approval(self.percent),
                           {**approval.model_dump(include={"approve", "approver", "reason"}), "at": time.time()})
        if approval.approve:
            return None
        return self.end("rollback", f"rejected by {approval.approver}: {approval.reason}", ["manual-abort"])

    def end(self, outcome: str, reason: str, triggers: list[str] = (), signals: dict | None = None,
            detected_at: float | None = None, superseded_by: str | None = None) -> StageResult:
        """The stage's record, after the rollback when it ends in one. A rollback that finds a newer
        go-live holding the target leaves it alone: the stage was superseded."""
        result, record_file = self.result, None
        result.outcome, result.reason, result.triggers = outcome, reason, list(triggers)
        if outcome == "rollback":
            rolled = roll_back(reason=f"{describe(list(triggers), signals or {})}: {reason}", stage=self.percent,
                               release=self.settings.release, settings=self.settings,
                               triggered_by=f"canary-stage {self.name}", signals=signals,
                               breach_detected_at=detected_at, triggers=list(triggers), generation=self.generation)
            ended = rollback_outcome(rolled)
            if ended == "LeftAlone":
                result.outcome, superseded_by = "superseded", rolled.result().left_alone
            else:
                result.rollback = ended
                report = rolled.result() if rolled.is_completed() else None
                record_file = report.evidence_file if isinstance(report, RollbackReport) else None
        if result.outcome == "superseded":
            result.superseded_by = superseded_by
            self.logger.warning("stage %s: superseded, stopping without touching the target: %s", self.name,
                                superseded_by)
            add_war_room_row(str(self.folder), WarRoomRow.from_verdict(datetime.now(timezone.utc), self.percent,
                                                                       "Superseded", {}))
        result.ended_at = time.time()
        # Only now: stopping the profilers waits for py-spy's files, and a rollback waits for nothing.
        profiles = self.profiles.stop()
        result.profile = self.profiles.write(profiles, signals or {}, list(triggers))
        self.folder.record(layout.stage_record(self.percent), result)
        if result.rollback:
            self.rollback_in_war_room(signals or {}, record_file)
        plot_stage(str(self.folder), self.percent)
        self.folder.seal(f"canary-stage {self.name}")
        self.profiles.push()
        return result

    def rollback_in_war_room(self, signals: dict, record_file: str | None) -> None:
        """After the rollback: the stage's Rollback row (written now when no gate decision wrote it: a
        rollout, an alert or the split rolled back) and, when the rollback stood on latency, event
        loop or GC, what the profiles say, on that row and at the end of the rollback's record."""
        profile = self.result.profile or {}
        notes = profile_notes(profile) if profile.get("signals") else []
        decided = bool(self.result.decisions) and self.result.decisions[-1]["decision"] == "rollback"
        try:
            if not decided:
                row = WarRoomRow.from_verdict(datetime.now(timezone.utc), self.percent, "Rollback", signals,
                                              catalogue=self.settings.policy.catalogue())
                row.update(self.row_notes())
                add_war_room_row(str(self.folder), {**row, "profile": notes} if notes else row)
            elif notes:
                update_war_room_row(str(self.folder), self.name, "Rollback", {"profile": notes})
            if notes and record_file:
                append_text(str(self.folder), record_file,
                            render_profile_addendum(notes, (profile.get("files") or {}).get("diff"), time.time()))
        except Exception as exc:  # the traffic is safe at weight 0; a lost note must not roll back again
            self.logger.warning("stage %s: the rollback's war-room row or profile note could not be written: %s",
                                self.name, error_line(exc))


@flow(name="canary-stage", flow_run_name="stage {percent}%")
@subflows_without_heartbeats
def canary_stage(settings: GoLiveSettings, percent: int, generation: int,
                 shadow_proven: list[str] | None = None) -> StageResult:
    """Run one stage at `percent` % of traffic, writing with the fencing `generation` the go-live
    took; returns how it ended (proceed, rollback or superseded). `shadow_proven`: the signals the
    shadow stage ended green on, which a small stage does not hold for its few requests
    (`golive.judge`). An error rolls back (`orchestrator-error`) and ends the stage; a cancel or an
    interrupt rolls back (`cancelled`) before it goes on."""
    return run_to_its_end(StageRun(settings, percent, generation, shadow_proven or []))


def run_to_its_end(stage: StageRun) -> StageResult:
    """Run a stage; an error rolls back (`orchestrator-error`) and ends it; a cancel or an interrupt
    rolls back (`cancelled`) before it goes on."""
    name = stage.name
    with clients_for_this_run():
        try:
            return stage.run()
        except Exception as exc:
            stage.logger.exception("stage %s: the go-live failed; rolling back", name)
            return stage.end("rollback", f"the go-live failed: {error_line(exc)}", ["orchestrator-error"])
        except BaseException as exc:
            stage.logger.error("stage %s: stopped (%s); rolling back", name, error_line(exc))
            stage.end("rollback", f"the run was stopped: {error_line(exc)}", ["cancelled"])
            raise
