"""shadow-stage: the canary judged on a copy of users' requests, before any user reaches it.

Stable's latency before the mirror → weight 0 with the router's mirror, with the go-live's fencing
generation (users answered by stable; the canary answers copies, which are dropped, and fills
orders on paper) → read back → each interval: what a canary stage looks at (the fence, the split:
no user on the canary, the rollout, the alerts, the signals a mirror shows, judged as a mirrored
scenario), and the checks only a mirror allows: stable not slowed by the mirror
(`golive.shadow`), the paper fills consistent with the live fills of the same orders
(`golive.drift`) and, where the target has a secondary (a second stable instance the copies go
to too), the canary's answers no more different from stable's than the secondary's are
(`golive.response_diff`). Where the target names pages a browser renders, a headless browser
loads them on both tracks (`tasks.browser`): what only a browser shows (CSP reports) is judged on
its page loads. Any failing rolls back, which turns the mirror off with weight 0.
Proceed turns the mirror off before the first stage raises the weight.
"""

from __future__ import annotations

import time

from prefect import flow

from golive import layout, plots
from golive.drift import drift_verdict
from golive.response_diff import compare_responses
from golive.evidence import EvidenceLedger
from golive.models import StageResult
from golive.settings import GoLiveSettings
from golive.shadow import SHADOW_SERIES, primary_slowed, shadow_notes, shadow_series
from golive.signals import by_role
from golive.stage import SHADOW_STAGE
from golive.validation import error_line
from flows import subflows_without_heartbeats
from flows.canary_stage import StageRun, run_to_its_end
from tasks.browser import BrowserCheck, start_browser_check, stop_browser_check
from tasks.prometheus import stable_level
from tasks.pushgateway import delete_series, push_series
from tasks.router import RouterFenced, read_weight, set_weight
from tasks.router_base import Deadline
from tasks.service import read_fills, read_responses

# Stable's level before the mirror is read over this many intervals.
BEFORE_INTERVALS = 3
# Each read of the fills reaches back this far before the last one's clock: a fill is stamped when
# decided and kept a moment later, so one stamped just before a read may appear only after it.
FILLS_OVERLAP_NS = 1_000_000_000
NO_FILLS_SINCE_NS = 2**62  # a clock no fill reaches: the answer is the clock alone
# The answers kept per service for the response comparison, the newest: a long stage's memory stays bounded.
RESPONSES_KEPT = 20_000


class _ShadowRun(StageRun):
    """A stage at weight 0 with the mirror: a stage's looks, with stable's latency and the fills'
    drift beside them (`checks_of_this_kind`)."""

    def __init__(self, settings: GoLiveSettings, generation: int):
        super().__init__(settings, SHADOW_STAGE, generation)
        self.shadow = settings.policy.shadow
        self.latency = by_role(settings.policy.catalogue(), "latency")
        self.stable_before: float | None = None
        self.stable_during: list[float | None] = []
        self.since_ns: dict[str, int] = {}
        self.fills: dict[str, dict[str, dict]] = {"live": {}, "paper": {}, "reference": {}}
        self.drift: dict | None = None
        self.answers: dict[str, dict[str, dict]] = {"primary": {}, "secondary": {}, "candidate": {}}
        self.answers_since: dict[str, int] = {}
        self.response_diff: dict | None = None
        self.browser: BrowserCheck | None = None
        self.looks = 0

    def raise_weight(self) -> StageResult | None:
        interval = self.settings.policy.interval_seconds
        now = time.time()
        if self.latency is not None:
            before = stable_level(self.settings.prometheus, self.settings.policy, self.latency.name,
                                  now - BEFORE_INTERVALS * interval, now, return_state=True)
            self.stable_before = before.result() if before.is_completed() else None
        if (clock := self.fills_clock()) is not None:
            self.since_ns = dict.fromkeys(self.fills, clock)
            self.answers_since = dict.fromkeys(self.answers, clock)
        deadline = Deadline.after(self.settings.policy.rollback_budget_seconds).at
        try:
            change = set_weight(self.settings.target.router, 0, self.generation, deadline, mirror=True)
        except RouterFenced as exc:
            return self.end("superseded", f"the router refused the mirror: {exc}", superseded_by=exc.fence.describe())
        self.folder.record(layout.weight_set(self.percent), change)
        readback = read_weight(self.settings.target.router)
        self.folder.record(layout.weight_readback(self.percent), readback)
        self.result.weight_verified = readback.in_force == 0 and readback.mirror
        if not self.result.weight_verified:
            return self.end("rollback", f"asked for weight 0 with the mirror, router serves {readback.in_force} "
                            f"with the mirror {'on' if readback.mirror else 'off'}", ["weight-not-applied"],
                            detected_at=readback.at)
        self.start_browser_check()
        self.gate.start(readback.at)
        self.push_series()
        return None

    def start_browser_check(self) -> None:
        """A headless browser loading the target's pages on both tracks (`tasks.browser`), where
        the target names pages: what only a browser shows (CSP reports) is then judged here too.
        The secondary, where there is one, gets the same loads: it is the reference the canary's
        paper fills and answers are compared with, and a reference the browser spared would be the
        quieter of the two on a busy machine."""
        target = self.settings.target
        if not target.browser_pages:
            return
        tracks = {"stable": target.stable_url, "canary": target.canary_url}
        if target.secondary_url is not None:
            tracks["secondary"] = target.secondary_url
        self.browser = start_browser_check(tracks, target.browser_pages, self.shadow.browser_pages_per_minute,
                                           self.shadow.chromium)
        if self.browser.problem:
            self.logger.warning("stage shadow: %s; what only a browser shows waits for users' browsers",
                                self.browser.problem)

    def browser_checked(self) -> bool:
        return self.browser is not None and self.browser.problem is None

    def fills_clock(self) -> int | None:
        """The services' monotonic clock now (stable's; both tracks share the machine's), from
        which fills are read; None when stable does not answer (the drift is then unread)."""
        state = read_fills(self.settings.target.stable_url, NO_FILLS_SINCE_NS, return_state=True)
        return state.result()["now_ns"] if state.is_completed() else None

    def checks_of_this_kind(self, tick: float) -> StageResult | None:
        """Stable's latency with the mirror on, and the drift of the paper fills; evidence each look."""
        self.looks += 1
        slowed = self.stable_slowed(tick)
        self.drift = self.read_drift()
        self.response_diff = self.read_response_diff()
        differ = (self.response_diff or {}).get("findings")
        self.result.shadow = {"stable_latency": {"signal": self.latency.name if self.latency else None,
                                                 "before": self.stable_before, "during": self.stable_during,
                                                 "max_ratio": self.shadow.primary_slowdown_max_ratio},
                              "drift": _without_lists(self.drift),
                              "response_diff": _without_lists(self.response_diff)}
        self.folder.record(layout.shadow_look(self.looks), {"at": tick, **self.result.shadow, "drift": self.drift,
                                                            "response_diff": self.response_diff, "slowed": slowed})
        self.push_series()
        if slowed:
            seen = {"stable_latency_with_mirror": {
                "verdict": "breach", "baseline": self.stable_during[-1], "detail": slowed,
                "rule": f"<= {self.shadow.primary_slowdown_max_ratio:g} x {self.stable_before:.4g} before the mirror"}}
            return self.end("rollback", slowed, ["shadow-slows-primary"], seen, detected_at=tick)
        if self.drift and self.drift["verdict"] == "breach":
            seen = {"consistency_drift_p99_ms": {"verdict": "breach", "canary": self.drift["p99_abs_ms"],
                                                 "rule": f"< {self.shadow.drift_p99_max_ms:g} ms",
                                                 "detail": self.drift["detail"]}}
            return self.end("rollback", f"consistency drift: {self.drift['detail']}", ["shadow-drift"], seen,
                            detected_at=tick)
        if differ:
            seen = {"response_difference_pct": {
                "verdict": "breach", "canary": differ[0]["raw_pct"], "baseline": differ[0]["noise_pct"],
                "rule": f"<= noise + {self.shadow.response_margin_pct:g} points",
                "detail": self.response_diff["summary"]}}
            return self.end("rollback", f"response difference: {self.response_diff['summary']}",
                            ["shadow-response-difference"], seen, detected_at=tick)
        return None

    def push_series(self, mirror_on: bool = True) -> None:
        """The shadow stage's numbers for the dashboard, at `prometheus.pushgateway_url` when set
        (`golive.shadow.shadow_series`); once the mirror is off, taken away. A push that fails is a
        warning: the gate reads its numbers itself."""
        url, target = self.settings.prometheus.pushgateway_url, self.settings.target
        if url is None:
            return
        try:
            if mirror_on:
                push_series(url, target.service, self.settings.release, shadow_series(self.drift, self.response_diff),
                            SHADOW_SERIES)
            else:
                delete_series(url, target.service, self.settings.release)
        except Exception as exc:
            self.logger.warning("stage shadow: the dashboard's series were not %s: %s",
                                "pushed" if mirror_on else "taken away", error_line(exc))

    def row_notes(self) -> dict[str, list[str]]:
        """Under each shadow row: stable's latency with the mirror on, the drift and the answers' difference so far."""
        signal = self.latency.name if self.latency else None
        notes = shadow_notes(signal, self.stable_before, self.stable_during, self.drift)
        if self.response_diff is not None:
            notes.append(f"response difference: {self.response_diff['summary']}")
        return {"shadow": notes}

    def stable_slowed(self, tick: float) -> str | None:
        if self.latency is None:
            return None
        interval = self.settings.policy.interval_seconds
        state = stable_level(self.settings.prometheus, self.settings.policy, self.latency.name, tick - interval, tick,
                             return_state=True)
        self.stable_during.append(state.result() if state.is_completed() else None)
        judging = self.settings.policy.judge_policy()
        return primary_slowed(self.stable_before, self.stable_during, self.shadow.primary_slowdown_max_ratio,
                              judging.breach_intervals, judging.absolute_floor * self.latency.threshold)

    def read_drift(self) -> dict | None:
        """The live fills (stable's) and the paper fills (the canary's, and the secondary's where the
        target has one) since the mirror, matched; None when the services' clock was not read before it."""
        if not self.since_ns:
            return None
        target = self.settings.target
        sides = [("live", target.stable_url, False), ("paper", target.canary_url, True)]
        if target.secondary_url is not None:
            sides.append(("reference", target.secondary_url, True))
        for kind, url, paper in sides:
            state = read_fills(url, self.since_ns[kind], return_state=True)
            if not state.is_completed():
                self.logger.warning("stage shadow: the %s fills were not read: %s", kind, state.message)
                continue
            answer = state.result()
            self.since_ns[kind] = max(self.since_ns[kind], answer["now_ns"] - FILLS_OVERLAP_NS)
            for fill in answer["fills"]:
                if fill.get("paper") is paper:
                    self.fills[kind][fill["request_id"]] = fill
        return drift_verdict(list(self.fills["live"].values()), list(self.fills["paper"].values()),
                             self.shadow.drift_p99_max_ms, self.shadow.min_matched_fills,
                             list(self.fills["reference"].values()))

    def read_response_diff(self) -> dict | None:
        """Stable's answers to users, its secondary's and the canary's to the same requests' copies,
        compared (`golive.response_diff`); None without a secondary or the services' clock."""
        target, shadow = self.settings.target, self.shadow
        if target.secondary_url is None or not self.answers_since:
            return None
        for side, url in (("primary", target.stable_url), ("secondary", target.secondary_url),
                          ("candidate", target.canary_url)):
            state = read_responses(url, self.answers_since[side], return_state=True)
            if not state.is_completed():
                self.logger.warning("stage shadow: the %s's answers were not read: %s", side, state.message)
                continue
            answer, kept = state.result(), self.answers[side]
            self.answers_since[side] = max(self.answers_since[side], answer["now_ns"] - FILLS_OVERLAP_NS)
            kept.update((response["request_id"], response) for response in answer["responses"])
            for oldest in list(kept)[:max(0, len(kept) - RESPONSES_KEPT)]:
                del kept[oldest]
        report = compare_responses(*(list(self.answers[side].values()) for side in self.answers),
                                   margin_pct=shadow.response_margin_pct, min_pairs=shadow.response_min_pairs,
                                   alpha=shadow.response_alpha, ignored_fields=shadow.response_ignored_fields)
        return report.as_dict()

    def end(self, outcome: str, reason: str, triggers: list[str] = (), signals: dict | None = None,
            detected_at: float | None = None, superseded_by: str | None = None) -> StageResult:
        if outcome == "proceed":
            outcome, reason, superseded_by = self.mirror_off(reason)
            last = self.result.decisions[-1]["signals"] if self.result.decisions else {}
            self.result.shadow = {**(self.result.shadow or {}),
                                  "proven": sorted(name for name, v in last.items() if v.get("verdict") == "pass")}
        if self.drift is not None:
            self.record_drift()
        if self.response_diff is not None:
            self.folder.record(layout.SHADOW_RESPONSE_DIFF, self.response_diff)
        self.push_series(mirror_on=False)
        try:
            return super().end(outcome, reason, triggers, signals, detected_at, superseded_by)
        finally:  # after the rollback: a page that hangs never delays weight 0
            if self.browser is not None:
                self.folder.record(layout.SHADOW_BROWSER, stop_browser_check(self.browser).model_dump())

    def record_drift(self) -> None:
        """The drift at the stage's end: its numbers and its histogram (a picture that cannot be drawn
        is a warning, never the stage's end)."""
        self.folder.record(layout.SHADOW_DRIFT, self.drift)
        try:
            d, limit = self.drift, self.shadow.drift_p99_max_ms
            p99 = "–" if d["p99_abs_ms"] is None else f"{d['p99_abs_ms']:.1f} ms"
            picture = plots.drift_png(d["histogram"], limit, f"shadow drift: {d['verdict']} ({d['pairs']} pairs, p99 "
                                      f"{p99}; {d['late_beyond']} late, {d['early_beyond']} early at {limit:g} ms+, "
                                      f"in {d['late_seconds']} and {d['early_seconds']} s of orders)")
            EvidenceLedger(str(self.folder)).write_bytes(layout.SHADOW_DRIFT_PLOT, picture)
        except Exception as exc:
            self.logger.warning("stage shadow: the drift picture was not drawn: %s", error_line(exc))

    def mirror_off(self, reason: str) -> tuple[str, str, str | None]:
        """Weight 0 without the mirror, as this generation (the first stage's write would turn it
        off too; a go-live stopped in between must not leave the canary answering copies)."""
        deadline = Deadline.after(self.settings.policy.rollback_budget_seconds).at
        try:
            set_weight(self.settings.target.router, 0, self.generation, deadline)
        except RouterFenced as exc:
            return "superseded", f"the router refused the mirror's end: {exc}", exc.fence.describe()
        except Exception as exc:
            self.logger.warning("stage shadow: the mirror was not turned off (the next weight write does): %s",
                                error_line(exc))
        return "proceed", reason, None


def _without_lists(drift: dict | None) -> dict | None:
    return None if drift is None else {k: v for k, v in drift.items() if not isinstance(v, (list, dict))}


@flow(name="shadow-stage", flow_run_name="shadow stage")
@subflows_without_heartbeats
def shadow_stage(settings: GoLiveSettings, generation: int) -> StageResult:
    """Judge the canary on a copy of users' requests (weight 0 with the router's mirror), writing
    with the fencing `generation` the go-live took; returns how it ended, as a stage does (stage
    `SHADOW_STAGE`). An error or a cancel rolls back, which turns the mirror off."""
    return run_to_its_end(_ShadowRun(settings, generation))
