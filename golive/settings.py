"""What a go-live needs to know: stages and timings, where the signals and the traffic are.

The release and four sections, each a model of its own: `policy` (how the canary goes),
`prometheus` (where it is measured), `target` (what moves its traffic) and `process` (everything
around it). Loaded from YAML for the command line (`golive.yaml`, one mapping per section) and
from Prefect blocks for deployments (each block *is* its section's model); both end up here,
validated, with errors that name the field (`policy.dwell_seconds: …`).
"""

from __future__ import annotations

import math
import re
from pathlib import Path, PurePosixPath
from typing import Annotated, Literal

import yaml
from pydantic import (
    AfterValidator, BaseModel, ConfigDict, Field, StrictBool, StrictInt, ValidationError, field_validator,
    model_validator,
)

from golive.error_budget import BudgetSettings
from golive.policy import JudgePolicy
from golive.profiling_settings import ProfilingSettings
from golive.signal_packs import DEFAULT_PACK, PACKS, ClusterNames, selected_by, track_selectors_problem
from golive.signals import TRAFFIC_CANARY_QUERY, TRAFFIC_TOTAL_QUERY, Signal, judged_signals, signal_list
from golive.stage import SHADOW_STAGE, StagePlan, deferral_stage
from golive.validation import check_service_url, check_tag_message, escape_line, parse_release

# An address golive calls: http(s), and never with credentials in it (those live in Secret blocks).
ServiceUrl = Annotated[str, AfterValidator(check_service_url)]


def _check_path_text(value: str) -> str:
    # The file system stops a name at NUL; refused here, it is an error naming the field, not a crash later.
    if "\0" in value:
        raise ValueError("a path cannot hold a NUL character")
    return value


# A file or folder golive opens.
PathText = Annotated[str, AfterValidator(_check_path_text)]

__all__ = [
    "SECTIONS", "FirstNightSettings", "GameDaySettings", "GitHubSettings", "GitSettings", "GoLiveSettings",
    "KubernetesSettings", "MirrorRoute", "OperatorSettings", "PolicySettings", "ProcessSettings", "PrometheusSettings",
    "RouterSettings", "SettingsError", "SigningSettings", "TargetSettings", "load_settings", "merge_settings",
    "settings_error",
]

RUNBOOK_STAGES = (1, 5, 25, 50, 100)
TRAFFIC_QUERY_FIELDS = ("traffic_canary_query", "traffic_total_query")
# Upper bounds no real setting reaches: a number past them is a typo or an attack, not a choice.
DAY, WEEK = 86400.0, 7 * 86400.0
# What a settings file may hold: far more than any holds, far less than a YAML alias bomb expands to.
MAX_FILE_BYTES = 1 << 20
MAX_DEPTH = 16
MAX_VALUES = 10_000
# The judge's overrides and the signals' thresholds: as the judge's scenarios, at most 10^12.
MAX_NUMBER = 1e12
# A Kubernetes name that is a DNS label (RFC 1123): a Service's, a namespace's.
DNS_LABEL = r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?"


def _known_pack(name: object) -> bool:
    """A pack's name: a string among PACKS (a list or a mapping is never looked up)."""
    return isinstance(name, str) and name in PACKS


class SettingsError(ValueError):
    """Invalid settings; one line naming the field."""


class _FieldError(ValueError):
    """A model's own check failed on one of its fields: `<field>: <message>`. The error's path
    goes on to that field (`policy.dwell_seconds: …`), not only to the model."""


class _Strict(BaseModel):
    # Every number finite: an infinite dwell or budget waits forever, a NaN compares false everywhere.
    # Numbers and switches are given as such (each Field says strict): "900" or true is not a
    # duration, 1 or "yes" not a switch.
    # No text is empty: an empty block name, query, path or label is a mistake that would surface
    # mid go-live as a strange error; a field that may be absent is None.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False, str_min_length=1)


class KubernetesSettings(_Strict):
    """Where the release runs in a cluster and which objects carry its traffic split."""

    namespace: str = "default"
    credentials_block: str | None = None  # a `golive kubernetes cluster` block …
    kubeconfig: PathText | None = None  # … or this kubeconfig file (default: $KUBECONFIG, ~/.kube/config) …
    context: str | None = None
    in_cluster: StrictBool = False  # … or the pod's service account
    ingress: str = "spark"  # ingress-nginx: the primary Ingress, routing to the stable Service
    canary_ingress: str | None = None  # default: "<ingress>-canary", created from the primary when absent
    canary_weight_total: int = Field(100, ge=1, le=10_000, strict=True)  # ingress-nginx `canary-weight-total`
    canary_header: str = "X-Canary"  # `canary-by-header`: drills send the pin (RouterSettings.canary_pin_file)
    http_route: str = "spark"  # Gateway API: the HTTPRoute whose backendRefs carry the weights
    stable_service: str = "spark-stable"
    canary_service: str = "spark-canary"
    canary_deployment: str = "spark-canary"
    container: str | None = None  # the canary container whose image tag is the release; default: the first
    scale_canary_to_zero: StrictBool = False  # on rollback, after the weight is 0
    request_timeout_seconds: float = Field(10.0, gt=0, le=600, strict=True)
    # The shadow stage's mirror: a Service reaching the canary pods on a port where every request is
    # shadow traffic (orders filled on paper), with no route from users. The routers cannot mark a
    # copy with a header, so the port marks it. Without it a cluster router does not mirror.
    shadow_service: str | None = Field(None, max_length=63)
    shadow_port: StrictInt | None = Field(None, ge=1, le=65535)
    cluster_domain: str = Field("cluster.local", max_length=253)  # the mirror's address: <service>.<ns>.svc.<this>

    @field_validator("namespace", "stable_service", "canary_service", "container", "shadow_service")
    @classmethod
    def _label(cls, name: str | None) -> str | None:
        # Used in the API's paths and in objects golive writes (shadow_service in ingress-nginx's
        # configuration too): a DNS label, as Kubernetes names them, and nothing else.
        if name is not None and not re.fullmatch(DNS_LABEL, name):
            raise ValueError(f"expected a Kubernetes name (lower-case letters, digits and -, at most 63), "
                             f"got {escape_line(name)[:80]!r}")
        return name

    @field_validator("ingress", "canary_ingress", "http_route", "canary_deployment")
    @classmethod
    def _object_name(cls, name: str | None) -> str | None:
        if name is not None and not (len(name) <= 253 and re.fullmatch(rf"{DNS_LABEL}(\.{DNS_LABEL})*", name)):
            raise ValueError(f"expected a Kubernetes object's name (lower-case letters, digits, - and .), "
                             f"got {escape_line(name)[:80]!r}")
        return name

    @field_validator("cluster_domain")
    @classmethod
    def _domain_name(cls, domain: str) -> str:
        if not re.fullmatch(rf"{DNS_LABEL}(\.{DNS_LABEL})*", domain):
            raise ValueError(f"expected a DNS domain such as cluster.local, got {escape_line(domain)[:80]!r}")
        return domain

    @model_validator(mode="after")
    def _shadow_service_reachable(self) -> KubernetesSettings:
        if self.shadow_service is None:
            return self
        if self.shadow_port is None:
            raise _FieldError("shadow_port: needed with shadow_service (the Service's port where every request "
                              "is shadow traffic)")
        return self

    @property
    def canary_ingress_name(self) -> str:
        return self.canary_ingress or f"{self.ingress}-canary"

    @property
    def mirrors(self) -> bool:
        """Whether the routers of this cluster can mirror (the shadow stage): a shadow Service is named."""
        return self.shadow_service is not None


class MirrorRoute(_Strict):
    """Requests the shadow stage's mirror may copy: these methods on this path (exact, or a prefix
    ending in `*`). Only routes whose copy changes nothing belong here: GET and HEAD, and the
    routes the canary answers on paper for a copy (`X-Golive-Shadow: 1`)."""

    methods: tuple[Literal["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"], ...] = Field(min_length=1)
    path: str = Field(max_length=200)

    @field_validator("path")
    @classmethod
    def _path_the_router_can_write(cls, path: str) -> str:
        # The router writes it into its configuration: nothing there may be read as configuration.
        if not re.fullmatch(r"/[A-Za-z0-9._~/-]*\*?", path):
            raise ValueError(f"expected / then letters, digits, . _ ~ - or / (a trailing * for a prefix), "
                             f"got {escape_line(path)[:80]!r}")
        return path


# The sandbox's: any GET or HEAD, and the demo's orders, which its canary fills on paper.
DEFAULT_MIRROR_ROUTES = (MirrorRoute(methods=("GET", "HEAD"), path="/*"),
                         MirrorRoute(methods=("POST",), path="/api/exec/order"))


class RouterSettings(_Strict):
    kind: Literal["sandbox", "ingress-nginx", "gateway-api"] = "sandbox"
    control_url: ServiceUrl = "http://127.0.0.1:18070"  # the sandbox router's control API
    kubernetes: KubernetesSettings | None = None  # for the ingress-nginx and gateway-api routers
    # A file holding the canary header's value that sends a request to the canary (ingress-nginx
    # `canary-by-header-value`; the sandbox router makes one): only golive's drills know it. Without
    # it the value is `always`, which any client can send, reaching a canary even after a rollback.
    canary_pin_file: PathText | None = None
    # The shadow stage's allow-list: what the mirror copies to the canary (the sandbox's router).
    mirror_routes: tuple[MirrorRoute, ...] = Field(DEFAULT_MIRROR_ROUTES, min_length=1, max_length=100)

    @model_validator(mode="after")
    def _cluster_routers_name_their_cluster(self) -> RouterSettings:
        if self.kind != "sandbox" and self.kubernetes is None:
            raise ValueError(f"the {self.kind} router needs `kubernetes` settings (namespace, objects, credentials)")
        if self.kind != "sandbox" and self.mirror_routes != DEFAULT_MIRROR_ROUTES:
            raise _FieldError(f"mirror_routes: the {self.kind} router's mirror copies every request its route "
                              "sends to the shadow Service; only the sandbox's mirror is narrowed")
        return self

    @property
    def on_kubernetes(self) -> bool:
        return self.kind != "sandbox"

    @property
    def canary_header(self) -> str:
        """The header that sends a request to the canary (`canary-by-header`)."""
        return self.kubernetes.canary_header if self.kubernetes and self.on_kubernetes else "X-Canary"

    @property
    def target(self) -> str:
        """What this router moves traffic on, as one go-live at a time holds it."""
        if self.kubernetes is None or self.kind == "sandbox":
            return f"{self.kind} {self.control_url}"
        cluster = self.kubernetes
        name = cluster.canary_ingress_name if self.kind == "ingress-nginx" else cluster.http_route
        return f"{self.kind} {cluster.credentials_block or cluster.context or 'default'}/{cluster.namespace}/{name}"


class SigningSettings(_Strict):
    key_path: PathText = ".golive/keys/signing_key.pem"  # made by `golive keys init`
    public_key_path: PathText | None = None  # default: beside the key, `<name>.pub.pem`
    secret_block: str | None = None  # a Prefect Secret block holding the PEM, instead of key_path
    sigstore: Literal["auto", "off"] = "auto"  # keyless too, when an identity token and the network are there
    sigstore_identity: str | None = None  # the signer's identity `evidence verify` expects
    sigstore_issuer: str | None = None
    required: StrictBool = True  # a key that fails stops the seal; false: the link is written unsigned
    gpg_key: str | None = None  # a GnuPG key (fingerprint or user id) signing the release's SHA256SUMS

    @field_validator("key_path", "public_key_path")
    @classmethod
    def _a_file(cls, path: str | None) -> str | None:
        if path is not None and (path.endswith(("/", "/.", "/..")) or Path(path).name in ("", ".", "..")):
            raise ValueError(f"expected a key file's path, got {escape_line(path)[:80]!r}")
        return path

    @property
    def public_path(self) -> Path:
        if self.public_key_path:
            return Path(self.public_key_path)
        key = Path(self.key_path)
        return key.with_name(key.name.removesuffix(".pem") + ".pub.pem")


class GitSettings(_Strict):
    repo: PathText | None = "."  # the release's source work tree; None: no repository to check or tag
    remote: str = "origin"

    @field_validator("remote")
    @classmethod
    def _a_remotes_name(cls, name: str) -> str:
        # Never an option of git's: `--upload-pack=…` would run a command.
        if not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_./-]{0,99}", name):
            raise ValueError(f"expected a git remote's name such as origin, got {escape_line(name)[:80]!r}")
        return name


class GitHubSettings(_Strict):
    repository: str = Field(pattern=r"^[\w.-]+/[\w.-]+$")  # owner/name
    api_url: ServiceUrl = "https://api.github.com"  # GitHub Enterprise: https://HOST/api/v3
    credentials_block: str | None = None  # a prefect-github GitHubCredentials block …
    # … or the environment variable holding the token: named for a GitHub token, so that a run's
    # parameters cannot send another of the worker's secrets (a passphrase, a cloud or CI token) to api_url.
    token_env: str = "GITHUB_TOKEN"
    freeze_label: str = "hold-for-canary"
    max_wait_seconds: float = Field(300.0, ge=0, le=3600, strict=True)  # the longest rate-limit wait golive sits out
    release_assets: StrictBool = False  # the closing attaches the release's SBOM, provenance, checksums to its release

    @field_validator("token_env")
    @classmethod
    def _a_token_variable(cls, name: str) -> str:
        if not re.fullmatch(r"(?:[A-Z0-9_]*GITHUB[A-Z0-9_]*|GH(?:_[A-Z0-9_]+)?)_(?:TOKEN|PAT)", name):
            raise ValueError("expected the name of a variable holding a GitHub token: GITHUB_TOKEN, GH_TOKEN, "
                             "or another *GITHUB*_TOKEN or GH_*_TOKEN")
        return name


class FirstNightSettings(_Strict):
    hours: int = Field(24, ge=1, le=168, strict=True)  # a week at most
    hour_seconds: float = Field(3600.0, gt=0, le=3600, strict=True)  # the demo compresses an hour to seconds
    slo_objective: float = Field(0.999, gt=0, lt=1, strict=True)  # of requests answered without a 5xx
    slo_period_hours: float = Field(720.0, gt=0, le=366 * 24, strict=True)
    green_burn: float = Field(1.5, gt=0, le=1000, strict=True)
    freeze_below_budget: float = Field(0.10, ge=0, le=1, strict=True)
    on_fast_burn: Literal["rollback", "freeze", "record"] = "rollback"
    track: str = "canary"  # the track serving the release after 100 %


class GameDaySettings(_Strict):
    # Under process.evidence_root, a folder a day: game-day/<YYYYMMDD> (its own check names an empty one).
    folder: str = Field("game-day", min_length=0)
    burst_requests: int = Field(100, ge=2, le=100_000, strict=True)
    burst_parallel: int = Field(10, ge=1, le=100, strict=True)
    outbox_window_seconds: float = Field(60.0, gt=0, le=DAY, strict=True)
    outbox_interval_seconds: float = Field(2.0, gt=0, le=3600, strict=True)
    outbox_lag_window_seconds: float = Field(5.0, gt=0, le=60, strict=True)  # what one reading of the lag covers
    chaos_window_seconds: float = Field(300.0, gt=0, le=DAY, strict=True)  # judged every interval_seconds, like a stage
    chaos_commands: dict[str, str] = Field(default_factory=dict)  # scenario → command, on a real system
    contract_command: str | None = None  # on a real system: the team's contract test instead

    @field_validator("folder")
    @classmethod
    def _folder_inside_the_evidence_root(cls, folder: str) -> str:
        path = PurePosixPath(folder)
        if (not path.parts or path.is_absolute() or ".." in path.parts or folder.startswith("~")
                or "\\" in folder or "\0" in folder):
            raise ValueError("expected a folder inside process.evidence_root: relative, without `..`")
        return folder


class OperatorSettings(_Strict):
    """Who answers for the go-live, as the operator card prints it."""

    incident_commander: str = "the on-call engineer"
    escalation: tuple[str, ...] = ()  # in order: who is called when the one before does not answer
    war_room_channel: str = "#golive-war-room"


class ShadowSettings(_Strict):
    """The shadow stage before the first (`policy.shadow`): users stay on stable; their requests
    that change nothing, and their orders (filled on paper), are copied to the canary, which is
    judged on them before any user reaches it. It runs where the router can mirror: the sandbox's,
    or a cluster router with `target.router.kubernetes.shadow_service`."""

    enabled: StrictBool = True
    dwell_seconds: float | None = Field(None, gt=0, le=DAY, strict=True)  # default: policy.dwell_seconds
    # Consistency drift: a live fill and the paper fill of the same order, p99 of |difference|.
    drift_p99_max_ms: float = Field(5.0, gt=0, le=60_000, strict=True)
    min_matched_fills: StrictInt = Field(20, ge=1, le=1_000_000)
    # Stable's latency with the mirror on, over its level just before: past this, the mirror is
    # slowing the users it copies, and the shadow stage rolls back (the mirror goes off with it).
    primary_slowdown_max_ratio: float = Field(1.25, ge=1, le=100, strict=True)
    # Response difference (`golive.response_diff`, with `target.secondary_url`): a route's field on
    # which the canary differs from stable more often than stable's secondary does, by more than
    # this many points, over at least `response_min_pairs` requests, beyond chance at
    # `response_alpha` (small: it is asked at every look, of every field).
    response_margin_pct: float = Field(1.0, ge=0, lt=100, strict=True)
    response_min_pairs: StrictInt = Field(50, ge=1, le=1_000_000)
    response_alpha: float = Field(0.001, gt=0, lt=1, strict=True)
    # Fields always different by design (the version a service names), by path or own name.
    response_ignored_fields: tuple[Annotated[str, Field(min_length=1, max_length=200)], ...] = Field(
        ("version", "sha256"), max_length=100)
    # The browser check (`target.browser_pages`): page loads a minute on each track, and the
    # Chromium it runs headless (a name on the PATH or a path).
    browser_pages_per_minute: float = Field(12.0, gt=0, le=600, strict=True)
    chromium: str = Field("chromium", min_length=1, max_length=4096)


class PolicySettings(_Strict):
    """How the canary goes: stages and timings, the hold budget, the human gate, the judge's
    policy and signal overrides (the `policy` section; the canary policy block)."""

    stages: tuple[StrictInt, ...] = RUNBOOK_STAGES
    dwell_seconds: float = Field(900.0, gt=0, le=DAY, strict=True)  # per stage …
    final_dwell_seconds: float = Field(1800.0, gt=0, le=DAY, strict=True)  # … and at 100 %
    interval_seconds: float = Field(60.0, gt=0, le=DAY, strict=True)
    hold_seconds: float = Field(600.0, gt=0, le=DAY, strict=True)  # one Hold re-measures this long
    hold_budget_seconds: float = Field(1200.0, ge=0, le=WEEK, strict=True)  # Holds allowed per stage, in total
    # A stage short of traffic waits this long; default 2× dwell.
    max_dwell_seconds: float | None = Field(None, gt=0, le=WEEK, strict=True)
    on_insufficient_traffic: Literal["pause", "rollback"] = "pause"  # then: ask a person, or roll back
    # … unless the next stage is at most this percent: it judges what this one lacked the traffic
    # for, at once (`golive.stage.deferral_stage`); 0: every stage waits and asks.
    defer_insufficient_up_to_percent: StrictInt = Field(5, ge=0, le=100)
    # A rollback keeps trying to reach weight 0 this long.
    rollback_budget_seconds: float = Field(60.0, gt=0, le=3600, strict=True)
    weight_tolerance_points: float = Field(2.0, ge=0, le=100, strict=True)  # observed split vs weight, beyond noise
    # The canary is not ready after this many failed health checks in a row (Kubernetes' readiness
    # probe failureThreshold): one slow answer on a busy machine is not a canary that is down.
    readiness_failure_threshold: int = Field(3, ge=1, le=100, strict=True)
    judge: dict[str, float] = Field(default_factory=dict)  # JudgePolicy overrides
    # The signals judged: a pack (golive.signal_packs) changed by `signals`, a mapping of changes
    # (override fields, add, rename, null removes) or the whole list (golive.signals.signal_list).
    signal_pack: str = DEFAULT_PACK
    signals: dict[str, dict | None] | list[dict] = Field(default_factory=dict)
    # How a track is selected where a query says `$track_selector`: label matchers per track
    # ({stable: …, canary: …}); default: the pack's rule over target.router.kubernetes' names, or
    # the scrape's `track="$track"` for a pack without one.
    track_selectors: dict[str, str] | None = None
    approve_each_stage: StrictBool = False
    approval_timeout_seconds: float = Field(3600.0, gt=0, le=WEEK, strict=True)
    shadow: ShadowSettings = Field(default_factory=ShadowSettings)

    @model_validator(mode="before")
    @classmethod
    def _judge_numbers_in_range(cls, data: object) -> object:
        # Before field parsing: a bool would be read as 1.0 and the field's error would hide the rule.
        judge = data.get("judge") if isinstance(data, dict) else None
        if isinstance(judge, dict):
            try:
                JudgePolicy.from_mapping(judge, "judge")
            except ValueError as exc:  # it names the key as given, which may hold a line break
                raise _FieldError(escape_line(exc)) from None
            except OverflowError:  # an integer past a float's range, where load_settings did not look first
                raise _FieldError("judge: a number too large to be a setting") from None
            _refuse_huge_numbers(judge, "judge")
        signals = data.get("signals") if isinstance(data, dict) else None
        if isinstance(signals, dict):
            for name, fields in signals.items():
                if isinstance(fields, dict):
                    _refuse_huge_numbers(fields, f"signals.{_field_name(name)}")
                elif fields is not None:
                    raise _FieldError(f"signals.{_field_name(name)}: expected a mapping of fields to override, "
                                      "or null to remove the signal")
        elif isinstance(signals, list):
            for i, fields in enumerate(signals):
                if not isinstance(fields, dict):
                    raise _FieldError(f"signals[{i}]: expected a mapping of a signal's fields")
                _refuse_huge_numbers(fields, f"signals[{i}]")
        elif signals is not None and "signals" in data:
            raise _FieldError("signals: expected a mapping of changes to the pack's signals, or a list of signals")
        selectors = data.get("track_selectors") if isinstance(data, dict) else None
        problem = None if selectors is None else track_selectors_problem(selectors)
        if problem:
            raise _FieldError(f"track_selectors{'' if problem[:1] == ':' else '.'}{escape_line(problem)}")
        pack_name = data.get("signal_pack") if isinstance(data, dict) else None
        if pack_name is not None and not _known_pack(pack_name):
            problem = (f"unknown pack {escape_line(repr(pack_name))}" if isinstance(pack_name, (str, int, float))
                       else f"expected a pack's name, got a {type(pack_name).__name__}")
            raise _FieldError(f"signal_pack: {problem} (known: {', '.join(PACKS)})")
        return data

    @field_validator("stages")
    @classmethod
    def _stages_rise_to_full_traffic(cls, stages: tuple[int, ...]) -> tuple[int, ...]:
        if not stages or any(not 0 < s <= 100 for s in stages) or list(stages) != sorted(set(stages)):
            raise ValueError("expected rising percentages in (0, 100]")
        if stages[-1] != 100:
            raise ValueError("the last stage must be 100")
        return stages

    @model_validator(mode="after")
    def _signals_sound(self) -> PolicySettings:
        try:
            self.catalogue()
        except SettingsError as exc:
            raise _FieldError(str(exc)) from None
        return self

    @model_validator(mode="after")
    def _windows_long_enough_to_judge(self) -> PolicySettings:
        # A window shorter than the judge's minimum observation can never be green: every
        # Hold would end in another Hold until the budget rolls the release back.
        policy = self.judge_policy()
        minimum = max(policy.min_seconds, policy.min_intervals * self.interval_seconds)
        for name, seconds in (("dwell_seconds", self.dwell_seconds), ("final_dwell_seconds", self.final_dwell_seconds),
                              ("hold_seconds", self.hold_seconds), ("shadow.dwell_seconds", self.shadow.dwell_seconds)):
            if seconds is not None and seconds < minimum:
                raise _FieldError(f"{name}: {seconds:g} s is shorter than the judge's minimum "
                                  f"observation ({minimum:g} s: judge.min_seconds, judge.min_intervals × interval)")
        return self

    def dwell_for(self, percent: int) -> float:
        if percent == SHADOW_STAGE:
            return self.shadow.dwell_seconds or self.dwell_seconds
        return self.final_dwell_seconds if percent == 100 else self.dwell_seconds

    def stage_plan(self, percent: int) -> StagePlan:
        dwell = self.dwell_for(percent)
        return StagePlan(percent=percent, interval_seconds=self.interval_seconds, dwell_seconds=dwell,
                         max_dwell_seconds=max(dwell, self.max_dwell_seconds or 2 * dwell),
                         hold_seconds=self.hold_seconds, hold_budget_seconds=self.hold_budget_seconds,
                         on_insufficient_traffic=self.on_insufficient_traffic,
                         defers_to=deferral_stage(percent, self.stages, self.defer_insufficient_up_to_percent))

    def judge_policy(self) -> JudgePolicy:
        return JudgePolicy.from_mapping({"hold_budget_seconds": self.hold_budget_seconds, **self.judge}, "judge")

    def judged(self, mirrored: bool = False, browser: bool = False) -> tuple[Signal, ...]:
        """The signals a stage judges (`golive.signals.judged_signals`)."""
        return judged_signals(self.catalogue(), mirrored, browser)

    def catalogue(self) -> tuple[Signal, ...]:
        """The signals this go-live is judged on, in the pack's order then the added ones."""
        try:
            pack = PACKS[self.signal_pack]
            return selected_by(signal_list(pack.signals, self.signals), self.track_selectors or pack.track_selectors())
        except (KeyError, ValueError) as exc:
            where = escape_line(exc.args[0])
            raise SettingsError(f"signals{where}" if where[:1] in ("[", ":") else f"signals.{where}") from None
        except OverflowError:
            raise SettingsError("signals: a number too large to be a setting") from None


def _cluster_names(target: object) -> ClusterNames:
    """The names a pack's track rule selects by: target.router.kubernetes' (its defaults where the
    target gives none, or gives them wrong: that is refused by the target's own fields)."""
    router = target.get("router") if isinstance(target, dict) else getattr(target, "router", None)
    cluster = router.get("kubernetes") if isinstance(router, dict) else getattr(router, "kubernetes", None)
    if isinstance(cluster, dict):
        try:
            cluster = KubernetesSettings.model_validate(cluster)
        except ValidationError:
            cluster = None
    if not isinstance(cluster, KubernetesSettings):
        return ClusterNames()
    return ClusterNames(namespace=cluster.namespace, ingress=cluster.ingress,
                        stable_service=cluster.stable_service, canary_service=cluster.canary_service)


def _selectors_can_be_followed(pack, policy: object, prometheus: object) -> None:
    """`policy.track_selectors` given by the user must change something, and the traffic split
    must follow them: the split counts all of a service's requests, which matchers per track do
    not say, so its two queries are given with them."""
    if isinstance(policy, dict):
        selectors = policy.get("track_selectors")
        given = selectors is not None and not track_selectors_problem(selectors)  # else refused as malformed
    else:
        given = getattr(policy, "track_selectors", None) is not None and "track_selectors" in policy.model_fields_set
    if not given:
        return
    if pack.track_rule is None:
        raise ValueError(f"policy.track_selectors: the {pack.name} pack selects a track by its track label; "
                         "its queries have no $track_selector to fill")
    fields = prometheus if isinstance(prometheus, dict) else getattr(prometheus, "model_fields_set", set())
    if any(field not in fields for field in TRAFFIC_QUERY_FIELDS):
        raise ValueError("policy.track_selectors: give prometheus.traffic_canary_query and "
                         "prometheus.traffic_total_query with them (the traffic split counts every request "
                         "of the service, which matchers per track do not say)")


class PrometheusSettings(_Strict):
    """Where the golden signals, the traffic split and the critical alerts are read (the
    `prometheus` section; the Prometheus source block)."""

    url: ServiceUrl = "http://127.0.0.1:19090"  # never with credentials: see auth_secret_block
    tls_verify: StrictBool = True  # https: Prometheus' certificate is checked (false only for a lab)
    ca_file: PathText | None = None  # the CA bundle that signed it, when not a public one
    auth_secret_block: str | None = None  # a Prefect Secret: a bearer token or {username, password}
    alertmanager_url: ServiceUrl | None = None  # its firing critical alerts for the service roll the canary back
    # golive's own series (the shadow stage's drift, response difference and mirror) for the dashboard.
    pushgateway_url: ServiceUrl | None = None
    traffic_canary_query: str = TRAFFIC_CANARY_QUERY
    traffic_total_query: str = TRAFFIC_TOTAL_QUERY


class TargetSettings(_Strict):
    """The service, the router that moves its traffic, where users' requests enter, and the two
    versions (the `target` section; the traffic target block)."""

    service: str = Field("spark", pattern=r"^[A-Za-z0-9_.:-]+$")  # the service's label on metrics and alerts
    router: RouterSettings = RouterSettings()
    traffic_url: ServiceUrl = "http://127.0.0.1:18080"  # where users' requests enter (the router)
    canary_url: ServiceUrl = "http://127.0.0.1:18082"
    stable_url: ServiceUrl = "http://127.0.0.1:18081"
    canary_admin_url: ServiceUrl | None = None  # the sandbox's fault switch, for chaos drills
    # A second instance of the stable version, sent the mirror's copies too: the noise the shadow
    # stage's response-difference check measures the canary against (none: the check is not made).
    secondary_url: ServiceUrl | None = None
    # The micro blast radius drill: the demo's mix (None), or GET requests to these paths of any
    # service (a 5xx or no answer is unexpected), stable's share counted by the sandbox router.
    drill_paths: tuple[Annotated[str, Field(pattern=r"^/[^\s]*$", max_length=512)], ...] | None = Field(
        None, min_length=1, max_length=64)
    # The service's pages a browser renders (their CSP reports are signals): in the shadow stage a
    # real headless browser loads them on both tracks and the secondary (`policy.shadow.browser_pages_per_minute`);
    # none: CSP reports wait for users' browsers at the first stages.
    browser_pages: tuple[Annotated[str, Field(pattern=r"^/[^\s]*$", max_length=512)], ...] = Field(
        (), max_length=20)

    @model_validator(mode="after")
    def _paths_drill_counted_by_the_router(self) -> TargetSettings:
        if self.drill_paths is not None and self.router.kind != "sandbox":
            raise _FieldError(f"drill_paths: a drill of paths counts stable's share with the sandbox router's "
                              f"series; not yet with the {self.router.kind} router")
        return self


class ProcessSettings(_Strict):
    """Everything around the canary: evidence, flight check, signing, git, GitHub, first night,
    game day, the people and the channel (the `process` section; the release process block)."""

    evidence_root: PathText = Field("evidence", min_length=1)
    preflight_budget_seconds: float = Field(90.0, gt=0, le=3600, strict=True)
    blast_radius_seconds: float = Field(30.0, gt=0, le=3600, strict=True)
    blast_radius_concurrency: int = Field(4, ge=1, le=64, strict=True)
    sbom_environment: PathText | None = None  # python or venv of the release; default: this one's
    signing: SigningSettings = SigningSettings()
    git: GitSettings = GitSettings()
    tag_message: str = "Canary successful: {green}/{total} signals pass"
    github: GitHubSettings | None = None  # None: no pull requests to freeze or release
    first_night: FirstNightSettings = FirstNightSettings()
    budget: BudgetSettings = BudgetSettings()  # the error budget as policy: freeze, lift, predictions
    game_day: GameDaySettings = GameDaySettings()
    notify_block: str | None = None  # a Prefect notification block (Slack, Teams, custom webhook): the war-room channel
    operator: OperatorSettings = OperatorSettings()
    profiling: ProfilingSettings = ProfilingSettings()  # py-spy on both tracks each stage; Pyroscope push

    @field_validator("tag_message")
    @classmethod
    def _tag_message_formats(cls, template: str) -> str:
        return check_tag_message(template)


class GoLiveSettings(_Strict):
    """The release and the four sections, each the settings one block holds."""

    # A SemVer 2.0 version: it names the evidence folder, the git tag, the deployment (its own check
    # names an empty one).
    release: str = Field(min_length=0)
    policy: PolicySettings = PolicySettings()
    prometheus: PrometheusSettings = PrometheusSettings()
    target: TargetSettings = TargetSettings()
    process: ProcessSettings = ProcessSettings()

    @field_validator("release")
    @classmethod
    def _release_is_a_version(cls, release: str) -> str:
        return parse_release(release)

    @property
    def shadow_runs(self) -> bool:
        """Whether the go-live begins with the shadow stage: asked for, and a router that mirrors (the
        sandbox's, or a cluster's with `shadow_service`)."""
        router = self.target.router
        return self.policy.shadow.enabled and (not router.on_kubernetes or router.kubernetes.mirrors)

    @property
    def planned_stages(self) -> tuple[int, ...]:
        """The stages in order, the shadow stage (`SHADOW_STAGE`, weight 0 with the mirror) first when it runs."""
        return ((SHADOW_STAGE,) if self.shadow_runs else ()) + tuple(self.policy.stages)

    @model_validator(mode="before")
    @classmethod
    def _traffic_split_of_the_pack(cls, data: object) -> object:
        # A pack's traffic split stands in for the runbook's wherever the prometheus section does
        # not give its own queries: the router pack counts users' requests where the router sees them.
        # A pack with a track rule selects the tracks by the target's names unless the policy says how.
        if not isinstance(data, dict):
            return data
        policy = data.get("policy")
        name = policy.get("signal_pack") if isinstance(policy, dict) else getattr(policy, "signal_pack", None)
        if not _known_pack(name if name is not None else DEFAULT_PACK):  # refused by PolicySettings
            return data
        _selectors_can_be_followed(PACKS[name or DEFAULT_PACK], policy, data.get("prometheus", {}))
        if name is None or name == DEFAULT_PACK:
            return data
        names = _cluster_names(data.get("target"))
        if PACKS[name].track_rule is not None:
            selectors = PACKS[name].track_selectors(names)
            if isinstance(policy, dict) and "track_selectors" not in policy:
                data = {**data, "policy": {**policy, "track_selectors": selectors}}
            elif isinstance(policy, PolicySettings) and "track_selectors" not in policy.model_fields_set:
                data = {**data, "policy": policy.model_copy(update={"track_selectors": selectors})}
        prometheus = data.get("prometheus", {})
        given = prometheus if isinstance(prometheus, dict) else getattr(prometheus, "model_fields_set", None)
        if given is None:
            return data
        queries = dict(zip(TRAFFIC_QUERY_FIELDS, PACKS[name].traffic_queries(names), strict=True))
        missing = {field: queries[field] for field in TRAFFIC_QUERY_FIELDS if field not in given}
        if not missing:
            return data
        if isinstance(prometheus, dict):
            return {**data, "prometheus": {**prometheus, **missing}}
        return {**data, "prometheus": prometheus.model_copy(update=missing)}

    @model_validator(mode="after")
    def _release_folder_sound(self) -> GoLiveSettings:
        self.evidence_dir  # noqa: B018 (proves the release folder stays under process.evidence_root)
        return self

    @property
    def evidence_dir(self) -> Path:
        """`<process.evidence_root>/v<release>`, proven to resolve inside the evidence root (a
        release folder that is a link elsewhere is refused) before anything is written there."""
        root = Path(self.process.evidence_root)
        folder = root / f"v{self.release}"
        if folder.resolve().parent != root.resolve():
            raise SettingsError(f"release: the folder {folder} leaves process.evidence_root {root}")
        return folder


SECTIONS = tuple(name for name in GoLiveSettings.model_fields if name != "release")


def merge_settings(base: dict, *changes: dict) -> dict:
    """`base` (settings as a mapping) with each of `changes` on top: a section's fields one by
    one, the release whole."""
    merged = dict(base)
    for change in changes:
        for key, value in change.items():
            if key in SECTIONS and isinstance(value, dict) and isinstance(merged.get(key), dict):
                merged[key] = {**merged[key], **value}
            else:
                merged[key] = value
    return merged


# The type pydantic names inside a field's place (`dict[constrained-str,nullable[…]]`, `[key]`): no setting.
_TYPE_TAG = re.compile(r"(?:dict|list|tuple|set|frozenset|nullable|union|tagged-union|chain|lax-or-strict"
                       r"|json-or-python|function-(?:after|before|wrap|plain))\[.*\]|\[key\]")


def settings_error(exc: ValidationError, section: str | None = None) -> SettingsError:
    """A validation error of the settings, or of their `section` alone, as one line naming the
    field (`policy.stages: the last stage must be 100`)."""
    err = exc.errors()[0]
    message = err["msg"].removeprefix("Value error, ")
    fields = [_field_name(part) for part in err["loc"] if not _TYPE_TAG.fullmatch(str(part))]
    where = ([section] if section else []) + fields
    if isinstance(err.get("ctx", {}).get("error"), _FieldError):
        field, message = message.split(": ", 1)
        where.append(field)
    return SettingsError(f"{'.'.join(where)}: {message}" if where else message)


def _field_name(key: object) -> str:
    """A key of the settings as an error names it: on one line (a key may hold any text), and short."""
    text = escape_line(key)
    return text if len(text) <= 60 else text[:59] + "…"


def _refuse_huge_numbers(overrides: dict, where: str) -> None:
    """A number past MAX_NUMBER among `overrides` (a threshold, a count, seconds) is a typo or an
    attack, never a setting: _FieldError naming it."""
    for key, value in overrides.items():
        if isinstance(value, bool) or not isinstance(value, int | float):
            continue  # the field's own check names a value that is no number, or not finite
        if (isinstance(value, int) or math.isfinite(value)) and abs(value) > MAX_NUMBER:
            raise _FieldError(f"{where}.{_field_name(key)}: expected a number of at most {MAX_NUMBER:g}")


def _check_shape(data: object) -> None:
    """Refuse what no setting can be before validation meets it, naming where: nesting deeper
    than MAX_DEPTH, more than MAX_VALUES values (a YAML alias bomb repeats one object millions of
    times), an integer too large for a float. Walked without recursion, so any depth is safe."""
    stack: list[tuple[object, tuple, int]] = [(data, (), 0)]
    seen = 0
    while stack:
        value, path, depth = stack.pop()
        seen += 1
        where = ".".join(_field_name(p) for p in path) or "settings"
        if seen > MAX_VALUES:
            raise SettingsError(f"settings: more than {MAX_VALUES} values (YAML aliases repeating one?)")
        if isinstance(value, dict | list | tuple):
            if depth >= MAX_DEPTH:
                raise SettingsError(f"{where}: nested too deeply (settings go {MAX_DEPTH} levels deep at most)")
            items = value.items() if isinstance(value, dict) else enumerate(value)
            stack.extend((item, (*path, key), depth + 1) for key, item in items)
        elif isinstance(value, int) and not isinstance(value, bool):
            try:
                float(value)
            except OverflowError:
                raise SettingsError(f"{where}: a number too large to be a setting") from None


def _read_yaml(path: Path) -> object:
    """A settings file's YAML, or SettingsError in one line naming the file."""
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise SettingsError(f"{escape_line(path)}: {exc.strerror}") from None
    if len(data) > MAX_FILE_BYTES:
        raise SettingsError(f"{escape_line(path)}: larger than {MAX_FILE_BYTES // 1024} KiB, not a settings file")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SettingsError(f"{escape_line(path)}: not UTF-8 text (byte {exc.start})") from None
    try:
        return yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f" at line {mark.line + 1} column {mark.column + 1}" if mark else ""
        raise SettingsError(f"{escape_line(path)}: invalid YAML{where} ({escape_line(exc.problem)})") from None
    except yaml.YAMLError as exc:
        raise SettingsError(f"{escape_line(path)}: invalid YAML ({' '.join(str(exc).split())})") from None
    except RecursionError:
        raise SettingsError(f"{escape_line(path)}: nested too deeply") from None


def _section_path(flat: str) -> str | None:
    """Where a top-level name of the older flat settings lives now (`prometheus_url` →
    `prometheus.url`); None for a name that is not one."""
    if flat == "release" or flat in SECTIONS:
        return None
    for section in SECTIONS:
        fields = GoLiveSettings.model_fields[section].annotation.model_fields
        for name in (flat, flat.removeprefix(f"{section}_")):
            if name in fields:
                return f"{section}.{name}"
    if flat in RouterSettings.model_fields:
        return f"target.router.{flat}"
    return None


def load_settings(source: str | Path | dict | None = None, **overrides) -> GoLiveSettings:
    """Settings from a YAML file or a mapping, with keyword overrides on top: the release, or a
    section's fields (`policy={"dwell_seconds": 30}`); an override of None changes nothing."""
    data: dict = {}
    if isinstance(source, dict):
        data = dict(source)
    elif source is not None:
        path = Path(source)
        loaded = _read_yaml(path)
        if not isinstance(loaded, dict):
            raise SettingsError(f"{escape_line(path)}: expected a mapping of settings")
        data = loaded
    given = {key: {k: v for k, v in value.items() if v is not None} if isinstance(value, dict) else value
             for key, value in overrides.items() if value is not None}
    for key in data:
        if isinstance(key, str) and (moved := _section_path(key)) is not None:
            raise SettingsError(f"{key}: settings are four sections now; this one is {moved}")
    merged = merge_settings(data, given)
    _check_shape(merged)
    try:
        return GoLiveSettings.model_validate(merged)
    except ValidationError as exc:
        raise settings_error(exc) from None
    except ValueError as exc:
        raise SettingsError(escape_line(exc)) from None
