"""rollback: traffic back to stable, verified, recorded. Its own flow and its own deployment.

First the rollback takes a new fencing generation at the target (`golive.fencing`), so every
older writer, a paused go-live above all, is refused from then on; then weight 0 is written with
it, before anything else is read: a router whose reads fail still gets it. Then it is read back;
a write or a read that fails is tried again with backoff, and every request's timeout is cut to
what is left of the rollback's budget (`rollback_budget_seconds`), so the budget holds inside an
attempt too. Weight 0 read back ends `RolledBack` (a report); anything else ends Failed named
`RollbackFailed`, loudly: the traffic may still be on the canary. On Kubernetes, when asked, the
canary Deployment is then scaled to 0. Safe to run twice.

A rollback that ends a named go-live (`generation`, the one that go-live took; or `crashed_run`)
leaves a newer go-live alone: it ends `LeftAlone` with a `late_rollback_…` record, never zeroing a
release that replaced the one it was meant for. An operator's rollback names none and ends
whatever runs.

Started by the `go-live` deployment's trigger when a go-live run crashed or was cancelled, it is
given that run's id (`crashed_run`) and rolls back the release and target that run was given.
"""

from __future__ import annotations

import contextvars
import time
from collections.abc import Iterator
from datetime import datetime, timezone

from prefect import Task, flow
from prefect.context import FlowRunContext
from prefect.runtime import flow_run
from prefect.states import Completed, Failed, State

from golive import layout
from golive.fencing import Fence, FenceHolder, leave_alone_because
from golive.models import RollbackReport
from golive.rollback_report import render_rollback, rollback_file_name
from golive.settings import GoLiveSettings, RouterSettings, SettingsError
from golive.stage import stage_name
from golive.validation import error_line, parse_release
from golive.warroom import WarRoomRow
from blocks import settings_for_run
from tasks.evidence import add_war_room_row, list_evidence, record, seal
from tasks.kubernetes import scale_canary
from tasks.logs import run_logger
from tasks.notify import announce
from tasks.prefect_api import read_flow_run_parameters, rename_flow_run
from tasks.router import RouterFenced, read_weight, set_weight, take_generation
from tasks.router_base import Deadline
from tasks.service import check_version

RETRY_DELAYS = (0.5, 1.0, 2.0, 4.0, 8.0)


def _run_name() -> str:
    params = flow_run.parameters
    settings = params.get("settings")
    release = params.get("release") or getattr(settings, "release", None) or (settings or {}).get("release")
    return _named(f"rollback v{release}" if release else "rollback", params.get("stage"))


def _named(run: str, stage: int | None) -> str:
    return run if stage is None else f"{run} at {stage_name(stage)}"


# Set while the rollback's steps run with no Prefect run to record them (`roll_back_without_the_server`:
# the API does not answer, or `golive rollback` has no server): each step is its task's function, called directly.
_WITHOUT_THE_SERVER = contextvars.ContextVar("golive_rollback_without_the_server", default=False)


def _step(step, *args) -> State:
    """One step of the rollback, its final state: a Prefect task run (a visible step, not retried:
    the rollback's own loop retries within its budget), or, for a plain function or with no
    server, the function called directly."""
    if isinstance(step, Task) and not _WITHOUT_THE_SERVER.get():
        return step.with_options(retries=0)(*args, return_state=True)
    try:
        return Completed(data=(step.fn if isinstance(step, Task) else step)(*args))
    except Exception as exc:  # noqa: BLE001 - as the task run's Failed state would carry it
        return Failed(data=exc, message=error_line(exc))


def _failure(state: State) -> str:
    exc = state.result(raise_on_failure=False)
    return error_line(exc) if isinstance(exc, BaseException) else " ".join((state.message or state.name).split())


class _LeftAlone(Exception):
    """A newer go-live holds the target: this rollback must not end it."""


def _attempts(deadline: float, steps: list[str], gave_up: str) -> Iterator[int]:
    """Attempt numbers 1, 2, 3 … with the backoff between them, as long as the next attempt still
    starts inside the budget; `gave_up` (with `{attempt}`) is the step that says it stopped."""
    for attempt, delay in enumerate((*RETRY_DELAYS, *[RETRY_DELAYS[-1]] * 100), 1):
        yield attempt
        if not Deadline(deadline).allows(delay):
            steps.append(gave_up.format(attempt=attempt))
            return
        time.sleep(delay)


def _take_target(router: RouterSettings, holder: FenceHolder, generation: int | None, crashed_run: str | None,
                 deadline: float, steps: list[str]) -> Fence | None:
    """A new generation for this rollback (rule 4 of golive.fencing), tried again until the budget
    is spent; None when the target never answered. _LeftAlone when a newer go-live holds it, or
    a rollback that already brought it to 0."""
    ends = generation is not None or crashed_run is not None
    for attempt in _attempts(deadline, steps, "gave up taking the target after {attempt} attempts"):
        if ends:  # a conditional take: on the generation read now, so a newer go-live is never fenced
            current = _step(read_weight, router, deadline)
            if not current.is_completed():
                steps.append(f"could not read the target's fence (attempt {attempt}): {_failure(current)}")
                continue
            fence = current.result().fence or Fence()
            if why := leave_alone_because(fence, generation, crashed_run, current.result().in_force):
                steps.append(why)
                raise _LeftAlone(why)
            taken = _step(take_generation, router, holder, fence.generation, deadline)
        else:
            taken = _step(take_generation, router, holder, None, deadline)
        if taken.is_completed():
            steps.append(f"took the traffic target: {taken.result().describe()} (every older writer is fenced)")
            return taken.result()
        if not isinstance(taken.result(raise_on_failure=False), RouterFenced):  # fenced: moved since read
            steps.append(f"could not take the traffic target (attempt {attempt}): {_failure(taken)}")
    return None


def _weight_to_zero(router: RouterSettings, fence: Fence, deadline: float, steps: list[str]) -> int | None:
    """Write 0 with the rollback's generation and read it back until 0 is read or the budget is
    spent; the weight last read (None: never read). A failed read never stops the write. A
    newer writer that fences this rollback ends the attempts: what it reads back is the answer."""
    after = None
    for attempt in _attempts(deadline, steps, "gave up after {attempt} attempts (rollback budget spent)"):
        wrote = _step(set_weight, router, 0, fence.generation, deadline)
        refusal = None if wrote.is_completed() else wrote.result(raise_on_failure=False)
        fenced = isinstance(refusal, RouterFenced)
        if wrote.is_completed():
            steps.append(f"set the canary weight to 0 (in force after {wrote.result().seconds:.2f} s)")
        elif fenced:
            steps.append(f"fenced by a newer writer: {refusal.fence.describe()}")
        else:
            steps.append(f"could not set the canary weight to 0 (attempt {attempt}): {_failure(wrote)}")
        readback = _step(read_weight, router, deadline)
        if readback.is_completed():
            after = readback.result().in_force
            steps.append(f"read back the weight in force: {after}")
            if after == 0 or fenced:
                return after
        else:
            steps.append(f"could not read the weight back, unverified (attempt {attempt}): {_failure(readback)}")
    return after


def _settings_of(release: str | None, config: str | None, blocks: dict[str, str] | None, stage: int | None,
                 crashed_run: str | None) -> GoLiveSettings:
    settings = None
    if crashed_run:
        given = read_flow_run_parameters(crashed_run)
        release = release or given.get("release")
        config, blocks, settings = config or given.get("config"), blocks or given.get("blocks"), given.get("settings")
    cfg = settings_for_run(release or "0.0.0", config, settings, blocks)
    if release is None:
        served = check_version(cfg.target.canary_url)
        try:
            cfg = cfg.model_copy(update={"release": parse_release(served.version or "")})
        except ValueError as exc:
            raise SettingsError(f"release: not given, and the canary's /version answer is no release: {exc}") from None
        if flow_run.id:
            rename_flow_run(flow_run.id, _named(f"rollback v{cfg.release}", stage))
    return cfg


@flow(name="rollback", flow_run_name=_run_name)
def rollback(
    reason: str,
    stage: int | None = None,
    dry_run: bool = False,
    release: str | None = None,
    config: str | None = None,
    settings: GoLiveSettings | None = None,
    blocks: dict[str, str] | None = None,
    triggered_by: str = "operator",
    signals: dict | None = None,
    breach_detected_at: float | None = None,
    evidence_folder: str | None = None,
    triggers: list[str] | None = None,
    crashed_run: str | None = None,
    generation: int | None = None,
) -> RollbackReport | State:
    """Move all traffic to stable and leave `rollback_<UTC>.txt` in the release's evidence.
    Without `release`, the release is the one `crashed_run` was given, else the version the canary
    serves; `evidence_folder` (a drill's) replaces the release's folder. `generation` or
    `crashed_run` name the go-live this rollback ends: a newer one is left alone."""
    logger = run_logger()
    if settings is None:
        settings = _settings_of(release, config, blocks, stage, crashed_run)
    # The stages a dead go-live raised the weight for: its evidence says how far it got.
    listed = _step(list_evidence, str(settings.evidence_dir)) if crashed_run else None
    moved = [p for name in listed.result() if (p := layout.parse_weight_set(name)) is not None] \
        if listed is not None and listed.is_completed() else []
    stage = stage if stage is not None else max(moved, default=None)
    router = settings.target.router
    started = time.time()
    deadline = Deadline.after(settings.policy.rollback_budget_seconds).at
    steps: list[str] = []
    fence = left_alone = None
    run_id = str(flow_run.id) if flow_run.id else None

    if dry_run:
        current = _step(read_weight, router, deadline)
        after = current.result().in_force if current.is_completed() else None
        steps.append(f"read the weight in force: {after}" if after is not None
                     else f"could not read the weight in force: {_failure(current)}")
        if current.is_completed() and current.result().fence:
            steps.append(f"would take a newer generation than {current.result().fence.describe()}")
        steps.append(f"would set the canary weight {'?' if after is None else after} → 0 (dry run: not changed)")
        steps.append("would read the weight back and expect 0")
    else:
        holder = FenceHolder(kind="rollback", name=f"rollback v{settings.release} ({triggered_by})"[:200], run=run_id)
        try:
            fence = _take_target(router, holder, generation, crashed_run.removeprefix("prefect.flow-run.")
                                 if crashed_run else None, deadline, steps)
        except _LeftAlone as exc:
            left_alone = str(exc)
        after = None
        if fence is not None:
            after = _weight_to_zero(router, fence, deadline, steps)
    weight_zero_at = time.time()
    cluster = router.kubernetes if router.on_kubernetes else None
    if cluster and cluster.scale_canary_to_zero and not left_alone:
        deployment = f"deployment {cluster.namespace}/{cluster.canary_deployment}"
        if dry_run:
            steps.append(f"would scale {deployment} to 0 replicas once the weight is 0")
        elif after == 0:
            scaled = _step(scale_canary, cluster, 0)
            steps.append(f"scaled {deployment} to {scaled.result()} replicas" if scaled.is_completed()
                         else f"could not scale {deployment} to 0 (traffic is safe at weight 0): {scaled.message}")
    for step in steps:
        logger.info(step)

    origin = breach_detected_at or started
    report = RollbackReport(
        reason=reason, stage=stage, triggered_by=triggered_by, dry_run=dry_run, steps=steps,
        weight_before=stage or None, weight_after=after, verified=not dry_run and after == 0,
        seconds_to_weight_zero=round(weight_zero_at - origin, 3) if not dry_run and after == 0 else None,
        breach_detected_at=breach_detected_at, triggers=list(triggers or ()), fence=fence, left_alone=left_alone,
        evidence_file=rollback_file_name(started, dry_run, run_id, late=bool(left_alone)),
    )
    folder = evidence_folder or str(settings.evidence_dir)
    if not dry_run and not left_alone:
        announce(settings, "rolled-back" if report.verified else "rollback-failed", stage, reason)
    written = [_step(record, folder, report.evidence_file, render_rollback(report, settings.release, started, signals))]
    if not dry_run and not left_alone and not triggered_by.startswith("canary-stage"):
        # A stage's rollback is a row of the stage's own; any other is the war room's news.
        row = WarRoomRow.from_verdict(datetime.now(timezone.utc), stage, "Rollback", {})
        written.append(_step(add_war_room_row, folder, row))
    written.append(_step(seal, folder, f"rollback{' (dry run)' if dry_run else ''}", settings.process.signing))
    for step in written:
        if not step.is_completed():  # the traffic is where it is; a lost record must not hide it
            logger.error("rollback: the record could not be written or sealed: %s", _failure(step))
    if report.outcome == "RollbackFailed":
        message = (f"ROLLBACK FAILED: weight 0 not verified within {settings.policy.rollback_budget_seconds:g} s; "
                   f"the router last read {'nothing' if after is None else after}: traffic may still reach the canary")
        logger.critical(message)
        return Failed(name="RollbackFailed", message=message)
    if left_alone:
        logger.warning("rollback v%s: %s", settings.release, left_alone)
    return report


def roll_back(**parameters) -> State:
    """Run the `rollback` flow and return its final state; when the flow cannot even start (the
    Prefect API does not answer: a subflow needs it, tasks do not), run the same steps in the
    calling run instead, so that a server outage never leaves traffic on a canary. Every caller
    that must roll back goes through here."""
    try:
        return rollback(**parameters, return_state=True)
    except Exception as exc:  # noqa: BLE001 - any failure to start the flow; its own failures are states
        run_logger().error("rollback: the flow could not start (%s); rolling back without it", error_line(exc))
    return roll_back_without_the_server(**parameters)


def roll_back_without_the_server(**parameters) -> State:
    """The rollback's steps in this process, with no Prefect run to record them (the record in the
    evidence is the same): where the API does not answer, and for `golive rollback` where no
    server is configured."""
    token = _WITHOUT_THE_SERVER.set(FlowRunContext.get() is None)  # inside a run, tasks need no server
    try:
        ended = rollback.fn(**parameters)
    finally:
        _WITHOUT_THE_SERVER.reset(token)
    return ended if isinstance(ended, State) else Completed(data=ended, name=ended.outcome)


def rollback_outcome(state: State) -> str:
    """How a rollback run ended: `RolledBack`, `LeftAlone` or `RollbackFailed` (its state, read
    by the flows that start one)."""
    if state.is_completed():
        result = state.result()
        return result.outcome if isinstance(result, RollbackReport) else "RolledBack"
    return "RollbackFailed"


def ending_after(state: State) -> str:
    """The go-live's ending once its rollback ended in `state`: `RolledBack`, `RollbackFailed`, or
    `Superseded` when the rollback left the target to a newer go-live."""
    outcome = rollback_outcome(state)
    return "Superseded" if outcome == "LeftAlone" else outcome
