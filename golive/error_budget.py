"""The error budget as policy: how long it lasts at this rate, when changes freeze and lift, and
what the preflight says about a go-live on a spent budget.

The budget is the first night's SLO (`process.first_night.slo_objective` over `slo_period_hours`)
measured on `process.budget.track`; the freeze line is `process.first_night.freeze_below_budget`
(10 % by default), so the first night and the freeze policy draw the same line.

**Time until the budget is spent** at the burn `b` of a window (1 h, 6 h): a burn of 1 spends the
whole budget over the period, so the share `r` still left lasts

    r × period ÷ b

(none while nothing burns; 0 once the budget is spent). Under `page_horizon_hours` (2 h) it pages,
under `ticket_horizon_hours` (24 h) it opens a ticket: the rules' `GoLiveErrorBudgetExhaustion`
alerts, with both windows under the horizon (the 6 h one proves the trend, the 1 h one that it
still goes on).

**Freeze rules**, the first that applies (`freeze_step`):

1. The budget is unknown (no answer, no requests): nothing changes. Unknown is not green, so a
   freeze never lifts on it; nor does a freeze start on it.
2. Below the line, or spent within the page horizon at the 1 h or 6 h burn: frozen (a freeze
   already on stays on, with its start kept; the time above the line starts again).
3. Frozen and above the line: stays frozen until it has been above for `lift_after_seconds`
   (an hour by default), then lifts.
4. Otherwise: not frozen.

**The folder is the truth.** The freeze is `<evidence_root>/<budget.folder>/freeze.json`, written
whole at each change; every freeze and lift is also a record of its own beside it
(`freeze_<stamp>.json`, `lift_<stamp>.json`), never rewritten. A release's override is
`override_<release>.json`: a later override of the same release replaces it whole, and it counts
only for the freeze it was recorded during.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StrictBool, ValidationError, field_validator

from golive import layout
from golive.models import Check
from golive.validation import escape_line, write_whole

__all__ = ["FREEZE_STATE", "BudgetSettings", "Freeze", "Override", "budget_check", "budget_folder",
           "exhaustion_seconds", "freeze_reason", "freeze_step", "read_freeze", "read_override", "record_change",
           "record_override", "spoken_duration"]

FREEZE_STATE = layout.BUDGET_FREEZE
HOUR = 3600.0
_A_CENTURY = 100 * 365.25 * 24 * HOUR


class BudgetSettings(BaseModel):
    """`process.budget`: the freeze policy and the predictive alerts' horizons."""

    # As the other sections: no unknown keys, numbers finite and given as numbers.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False, str_min_length=1)  # no empty text

    track: str = Field("canary", pattern=r"^[A-Za-z0-9_.:-]+$")  # the track whose budget is the service's
    freeze_label: str = Field("error-budget-freeze", min_length=1, max_length=50)  # on open pull requests
    lift_after_seconds: float = Field(3600.0, ge=0, le=7 * 86400, strict=True)  # above the line this long: lift
    ticket_horizon_hours: float = Field(24.0, gt=0, le=720, strict=True)  # spent sooner than this: a ticket
    page_horizon_hours: float = Field(2.0, gt=0, le=720, strict=True)  # spent sooner than this: a page, a freeze
    predict_windows_hours: tuple[float, ...] = (1.0, 6.0)  # the burns the prediction reads
    folder: str = Field("error-budget", pattern=r"^[A-Za-z0-9_.-]+$")  # under process.evidence_root
    label_pull_requests: StrictBool = True  # false: the freeze is recorded and told, no label set

    @field_validator("predict_windows_hours")
    @classmethod
    def _some_finite_positive_hours(cls, hours: tuple[float, ...]) -> tuple[float, ...]:
        if not hours or not all(math.isfinite(h) and 0 < h <= 720 for h in hours):
            raise ValueError(f"expected one or more hours, each > 0 and at most 720, got {list(hours)}")
        return hours


class Override(BaseModel):
    """A person's recorded decision to go live on a frozen budget."""

    release: str
    who: str = Field(min_length=1, max_length=200)
    why: str = Field(min_length=1, max_length=2000)
    at: float = Field(ge=0, le=1e11)  # Unix seconds (NaN and the far future refused)


# A time in the record: Unix seconds up to the year 5138, the furthest any clock here can show.
_RECORDED_TIME = Field(None, ge=0, le=1e11)


class Freeze(BaseModel):
    """The freeze as recorded: on or off, since when, why, and how long the budget has been back."""

    model_config = ConfigDict(extra="forbid")  # the writer writes every field; a misspelt one is no record of it

    frozen: StrictBool = False
    since: float | None = _RECORDED_TIME  # when it froze (or lifted, when not frozen)
    reason: str = ""
    remaining: float | None = None  # the budget's share left at the last step
    line: float = 0.10
    above_since: float | None = _RECORDED_TIME  # frozen, and above the line since then
    # Per burn window ("1h"); a slow burn puts it centuries away, so no bound but 0.
    exhaustion_seconds: dict[str, Annotated[float, Field(ge=0)] | None] = Field(default_factory=dict)
    pull_requests: list[int] = Field(default_factory=list)  # labelled by the freeze


def exhaustion_seconds(remaining: float | None, burn: float | None, period_hours: float) -> float | None:
    """Seconds until the budget is spent at `burn`: remaining × period ÷ burn; 0 once it is
    spent; None while nothing burns or nothing is known."""
    if remaining is None or burn is None or not (math.isfinite(burn) and math.isfinite(remaining)):
        return None
    if remaining <= 0:
        return 0.0
    if burn <= 0:
        return None
    return remaining * period_hours * HOUR / burn


def spoken_duration(seconds: float | None) -> str:
    """`5 h 40 m`, `2 d 3 h`, `12 m`; `never at this rate` for None."""
    if seconds is None:
        return "never at this rate"
    if not seconds < _A_CENTURY:  # infinite too
        return "over 100 years"
    minutes = int(seconds // 60)
    days, hours, minutes = minutes // 1440, minutes % 1440 // 60, minutes % 60
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes} m"
    return f"{minutes} m"


def _percent(share: float) -> str:
    return f"{100 * share:.0f} %" if abs(100 * share - round(100 * share)) < 0.05 else f"{100 * share:.1f} %"


def freeze_reason(remaining: float | None, exhaustion: Mapping[str, float | None], line: float,
                  horizon_hours: float) -> str | None:
    """Why the budget calls for a freeze (rule 2): below the line, or gone within the page horizon
    at some window's burn; None when it does not, or the budget is unknown (rule 1)."""
    if remaining is None:
        return None
    if remaining < line:
        return f"error budget {_percent(remaining)} < {_percent(line)}"
    soon = {w: s for w, s in exhaustion.items() if s is not None and s < horizon_hours * HOUR}
    if soon:
        return (f"error budget gone in {spoken_duration(min(soon.values()))} at the {min(soon, key=soon.get)} burn "
                f"(< {horizon_hours:g} h)")
    return None


def freeze_step(state: Freeze, remaining: float | None, exhaustion: Mapping[str, float | None], now: float,
                line: float, policy: BudgetSettings) -> tuple[Freeze, str | None]:
    """The freeze after one reading of the budget (the module's rules in order), and the change
    it makes: "freeze", "lift", or None."""
    readings = {"remaining": remaining, "line": line, "exhaustion_seconds": dict(exhaustion)}
    if remaining is None:
        return state, None
    why = freeze_reason(remaining, exhaustion, line, policy.page_horizon_hours)
    if why is not None:
        if state.frozen:
            return state.model_copy(update={**readings, "above_since": None}), None
        return Freeze(frozen=True, since=now, reason=why, **readings), "freeze"
    if not state.frozen:
        return state.model_copy(update=readings), None
    above_since = state.above_since if state.above_since is not None else now
    if now - above_since >= policy.lift_after_seconds:
        why = (f"error budget {_percent(remaining)} ≥ {_percent(line)} for "
               f"{spoken_duration(now - above_since) if now > above_since else '0 m'}")
        return Freeze(frozen=False, since=now, reason=why, **readings), "lift"
    return state.model_copy(update={**readings, "above_since": above_since}), None


def budget_check(state: Freeze | None, override: Override | None, release: str) -> Check:
    """The preflight's word on the budget: a frozen budget is NO-GO, naming it ("error budget
    7 % < 10 %: frozen"), unless a person's override for this release was recorded during this freeze."""
    if state is None or not state.frozen:
        left = "" if state is None or state.remaining is None else f": {_percent(state.remaining)} left"
        return Check(name="error_budget", ok=True, detail=f"not frozen{left}",
                     facts={"freeze": state.model_dump() if state else None})
    shown = "unknown" if state.remaining is None else _percent(state.remaining)
    frozen = f"error budget {shown} < {_percent(state.line)}: frozen"
    if state.remaining is not None and state.remaining >= state.line:
        frozen = f"error budget {shown}, frozen since it was gone too soon ({state.reason}), not yet lifted"
    facts = {"freeze": state.model_dump(), "override": override.model_dump() if override else None}
    if override is not None and override.release == release:
        # A decision taken on an earlier freeze is not one on this: it lapses when the budget freezes again.
        if state.since is None or override.at >= state.since:
            return Check(name="error_budget", ok=True, facts=facts,
                         detail=f"{frozen}; overridden by {override.who}: {override.why}")
        frozen += f" (the override by {override.who} was recorded before this freeze began; it lapsed)"
    return Check(name="error_budget", ok=False, facts=facts,
                 detail=f"{frozen} (a go-live needs `golive budget override --release {release} --who … --why …`)")


# The folder: one state file written whole, and a record per change.

def budget_folder(evidence_root: str | Path, policy: BudgetSettings) -> Path:
    """`<evidence_root>/<budget.folder>`, proven to stay inside the evidence root."""
    root = Path(evidence_root)
    folder = root / policy.folder
    if folder.resolve().parent != root.resolve():
        raise ValueError(f"process.budget.folder: {folder} leaves process.evidence_root {root}")
    return folder


def _read(path: Path, what: str = "the freeze") -> dict | None:
    """The record at `path` as a JSON object; None when it was never written. ValueError in one
    line, saying that `what` cannot be known, when it cannot be read or something else stands
    there (a folder, a file where its folder should be)."""
    unknown = f"{what} cannot be known"
    try:
        present = next((p for p in (path, *path.parents) if p.exists() or p.is_symlink()), None)
        if present is not path:
            if present is not None and not present.is_dir():
                raise ValueError(f"{escape_line(present.name)}: not a folder; {unknown}")
            return None
        if not path.is_file():
            raise ValueError(f"{escape_line(path.name)}: not a file; {unknown}")
    except OSError as exc:  # a name too long, a loop of links
        raise ValueError(f"{escape_line(path.name)[:80]}: {exc.strerror}; {unknown}") from None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as exc:
        raise ValueError(f"{path.name}: unreadable ({type(exc).__name__}); {unknown}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path.name}: not a JSON object; {unknown}")
    return data


def _first_error(exc: ValidationError) -> str:
    """`field: what is wrong`, on one line."""
    err = exc.errors()[0]
    return f"{'.'.join(escape_line(part) for part in err['loc'])[:80]}: {err['msg']}"


def _validated(model: type[BaseModel], data: dict, name: str, what: str) -> BaseModel:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ValueError(f"{name}: {_first_error(exc)}; {what} cannot be known") from None


def read_freeze(folder: Path) -> Freeze | None:
    """The freeze as recorded; None when no freeze was ever recorded. ValueError when the record is
    unreadable, or says nothing of `frozen` (never taken as "not frozen")."""
    data = _read(folder / FREEZE_STATE)
    if data is None:
        return None
    if "frozen" not in data:
        raise ValueError(f"{FREEZE_STATE}: frozen: missing; the freeze cannot be known")
    return _validated(Freeze, data, FREEZE_STATE, "the freeze")


def _write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_whole(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def _stamp(at: float) -> str:
    from datetime import datetime, timezone

    return datetime.fromtimestamp(at, timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def record_change(folder: Path, state: Freeze, change: str | None, details: Mapping | None = None) -> str | None:
    """Write the freeze state whole; a change ("freeze", "lift") also gets its own record. The
    record's name, or None when nothing changed."""
    _write_json(folder / FREEZE_STATE, state.model_dump())
    if change is None:
        return None
    name = layout.budget_change(change, _stamp(state.since or 0))
    _write_json(folder / name, {"change": change, **state.model_dump(), **(details or {})})
    return name


_RELEASE_NAME = re.compile(r"^[0-9A-Za-z.+-]{1,100}$")


def record_override(folder: Path, release: str, who: str, why: str, at: float) -> Override:
    """Record a person's override of the freeze for one release's go-live (a later override of
    the same release replaces it whole). ValueError naming the field when one is missing."""
    if not _RELEASE_NAME.match(release or ""):
        raise ValueError(f"release: expected a version such as 1.5.0, got {release!r}")
    for field, value in (("who", who), ("why", why)):
        if not (value or "").strip():
            raise ValueError(f"{field}: an override names who decided and why; {field} is empty")
    try:
        override = Override(release=release, who=who.strip(), why=why.strip(), at=at)
    except ValidationError as exc:
        raise ValueError(_first_error(exc)) from None
    _write_json(folder / layout.budget_override(release), override.model_dump())
    return override


def read_override(folder: Path, release: str) -> Override | None:
    if not _RELEASE_NAME.match(release or ""):
        return None
    name = layout.budget_override(release)
    data = _read(folder / name, "the override")
    return None if data is None else _validated(Override, data, name, "the override")
