"""What tasks and flows return: small JSON-friendly models, each also an evidence file."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, PlainSerializer, PlainValidator

from golive.fencing import Fence
from golive.scenario import Scenario, parse_scenario

__all__ = [
    "BlastRadiusResult",
    "Check",
    "GitState",
    "RollbackReport",
    "RolloutObservation",
    "SbomResult",
    "ServiceCheck",
    "ShareReading",
    "SignalWindow",
    "StageResult",
    "WeightReading",
]


class WeightReading(BaseModel):
    requested: int | None = None  # None: only read
    in_force: int
    at: float
    seconds: float = 0.0  # how long setting it took
    generation: int | None = None  # the generation the write carried
    fence: Fence | None = None  # the target's fence, as read with the weight
    mirror: bool = False  # users' requests copied to the canary as shadow traffic


class RolloutObservation(BaseModel):
    """What the canary's runtime says about itself, wherever it runs: a Deployment and its pods,
    or the sandbox's process answering /healthz and /version."""

    source: str  # "deployment shop/spark-canary", "http://127.0.0.1:18082"
    desired: int  # replicas asked for
    ready: int  # replicas ready to serve
    versions: list[str]  # image tags of the canary container, or the version it serves
    restarts: int | None = None  # container restarts summed over the canary pods; None: not known
    waiting: list[str] = Field(default_factory=list)  # containers' waiting reasons, e.g. CrashLoopBackOff
    detail: str = ""
    at: float = 0.0


class ShareReading(BaseModel):
    weight: int
    canary_requests: float
    total_requests: float
    observed_pct: float | None
    tolerance_points: float
    ok: bool
    window_seconds: float


class ServiceCheck(BaseModel):
    name: str
    url: str
    ok: bool
    detail: str
    version: str | None = None  # what /version said, for version checks


def _as_scenario(raw: Any) -> Scenario:
    return raw if isinstance(raw, Scenario) else parse_scenario(raw)


# The judge's input: typed in the code, docs/judge.md's JSON in evidence and task results.
JudgeInput = Annotated[Scenario, PlainValidator(_as_scenario), PlainSerializer(Scenario.to_dict, return_type=dict)]


class SignalWindow(BaseModel):
    """The signals of both tracks over one window, per interval, as the judge takes them."""

    stage_percent: int
    start: float
    end: float
    interval_seconds: float
    answered: bool = True  # False when Prometheus gave no response at all
    queries: dict[str, dict[str, dict[str, str]]] = Field(default_factory=dict)  # signal → track → kind → PromQL
    timestamps: list[float] = Field(default_factory=list)
    scenario: JudgeInput


class StageResult(BaseModel):
    stage: int
    outcome: Literal["proceed", "rollback", "superseded"]  # superseded: fenced off by a newer writer
    holds: int = 0
    triggers: list[str] = Field(default_factory=list)
    reason: str = ""
    weight_verified: bool = False
    share_ok: bool = False
    started_at: float
    ended_at: float
    decisions: list[dict[str, Any]] = Field(default_factory=list)  # verdicts at each window's end
    rollback: Literal["RolledBack", "RollbackFailed"] | None = None  # how its rollback ended, if it had one
    generation: int | None = None  # the fencing generation the stage wrote with
    superseded_by: str | None = None  # the fence that stood when the stage found itself fenced off
    critical_alerts: list[str] = Field(default_factory=list)  # the critical alerts seen firing during the stage
    alerts_unread: int = 0  # looks at which no alert source answered (not knowing is not "no alerts")
    profile: dict[str, Any] | None = None  # the stage's profiles, what grew and the advice (golive.profiles)
    shadow: dict[str, Any] | None = None  # the shadow stage's drift and stable's latency with the mirror


class RollbackReport(BaseModel):
    reason: str
    stage: int | None  # None: not known (a rollback by hand that did not say, a drill at weight 0)
    triggered_by: str
    dry_run: bool
    steps: list[str]
    weight_before: int | None  # the stage's weight as the caller knew it: weight 0 is written before any read
    weight_after: int | None  # as read back from the router; None: the read failed (unverified)
    seconds_to_weight_zero: float | None
    breach_detected_at: float | None
    evidence_file: str | None
    triggers: list[str] = Field(default_factory=list)
    verified: bool = False  # the router read back 0
    fence: Fence | None = None  # the generation this rollback took before it wrote 0
    left_alone: str | None = None  # why it did not touch the target (a newer go-live holds it)

    @property
    def outcome(self) -> str:
        """`RolledBack` once weight 0 is read back; `LeftAlone` when a newer go-live held the
        target, which it must not end; `RollbackFailed` when weight 0 could not be verified."""
        if self.left_alone:
            return "LeftAlone"
        return "RolledBack" if self.verified or self.dry_run else "RollbackFailed"


class Check(BaseModel):
    """One preflight check: its verdict, what was seen, and the facts behind it."""
    name: str
    ok: bool
    detail: str
    facts: dict[str, Any] = Field(default_factory=dict)
    skipped: bool = False


class GitState(BaseModel):
    repo: str
    commit: str | None
    branch: str | None
    remote_url: str | None
    dirty: list[str]
    tag: str
    tag_local: bool
    tag_remote: bool | None  # None: no remote to ask


class SbomResult(BaseModel):
    name: str
    sha256: str
    components: int
    spec_version: str
    valid: bool
    validation: str  # "validated" or "validated earlier (same sha256)" or the error


class BlastRadiusResult(BaseModel):
    url: str
    release: str
    seconds: float
    requests: int
    as_expected: int
    success_ratio: float
    p95_ms: float | None
    http_5xx_pct: float
    versions_seen: dict[str, int]
    stable_requests: float | None  # drill requests stable counted (must be 0)
    canary_requests: float | None
    ok: bool
    failures: list[str]
