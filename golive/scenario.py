"""The judge's input, parsed and validated; every error names the field it is about."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from golive.policy import JudgePolicy
from golive.signals import CATALOGUE, Signal, judged_signals
from golive.validation import escape_line

__all__ = ["Observation", "Scenario", "ScenarioError", "Series", "parse_scenario"]

_THRESHOLD_RULES = {"max": "max", "below": "below", "max_ratio_to_baseline": "max_ratio_to_baseline"}


class ScenarioError(ValueError):
    """Invalid judge input; the message starts with the path of the offending field."""


@dataclass(frozen=True)
class Observation:
    value: float | None
    bad: float | None = None
    total: float | None = None


@dataclass(frozen=True)
class Series:
    canary: tuple[Observation, ...]
    baseline: tuple[Observation, ...]


@dataclass(frozen=True)
class Scenario:
    stage_percent: float
    interval_seconds: float
    signals: dict[str, Series]
    catalogue: tuple[Signal, ...] = CATALOGUE
    policy: JudgePolicy = field(default_factory=JudgePolicy)
    # The shadow stage: the canary answers a copy of users' requests (stage_percent 0), so each
    # track saw the whole traffic it was sent and the two serve the same load.
    mirrored: bool = False
    # Under the mirror, the shadow stage's browser check ran: the signals it shows are judged too,
    # on its page loads (`Signal.in_browser`).
    browser: bool = False
    # The signals the shadow stage ended green on, shown there with the whole traffic: a small stage
    # (policy.shadow_credit_max_percent) does not hold them for its own few requests.
    shadow_proven: frozenset[str] = frozenset()

    @property
    def intervals(self) -> int:
        return max((len(s.canary) for s in self.signals.values()), default=0)

    def to_dict(self) -> dict:
        """The scenario in docs/judge.md's form, which `parse_scenario` reads back: a threshold
        that differs from the catalogue's default is written out, so a replay judges alike."""
        by_name = {s.name: s for s in self.catalogue}
        defaults = {s.name: s for s in CATALOGUE}
        out = {"stage_percent": _plain(self.stage_percent), **({"mirrored": True} if self.mirrored else {}),
               **({"browser": True} if self.browser else {}),
               "interval_seconds": self.interval_seconds,
               "signals": {name: {arm: [_observation_dict(o, by_name[name]) for o in getattr(series, arm)]
                                  for arm in ("canary", "baseline")}
                           for name, series in self.signals.items()}}
        thresholds = {s.name: {s.rule: s.threshold} for s in self.catalogue
                      if s.name not in defaults or (s.rule, s.threshold) != (defaults[s.name].rule, defaults[s.name].threshold)}
        if thresholds:
            out["thresholds"] = thresholds
        if self.shadow_proven:
            out["shadow_proven"] = sorted(self.shadow_proven)
        # An unset option (None) is the policy's default, which an override cannot spell.
        out["policy"] = {key: value for key, value in asdict(self.policy).items() if value is not None}
        return out


def _plain(x: float) -> float | int:
    return int(x) if float(x).is_integer() else x


def _observation_dict(o: Observation, sig: Signal) -> dict:
    counts = {kind: getattr(o, kind) for kind in ("bad", "total") if sig.has_counts or getattr(o, kind) is not None}
    return {"value": o.value, **counts}


# Larger than any count or measurement of one interval, small enough that no tail or log overflows.
_LARGEST = 1e12


class _Invalid(ValueError):
    """A value's problem, before the caller prefixes the path of the field (built only on error:
    a scenario has hundreds of observations and nearly all of them are fine)."""


def _name(key: Any) -> str:
    """A key of the input as an error names it: on one line, and short."""
    text = escape_line(key)
    return text if len(text) <= 60 else text[:59] + "…"


def _checked(raw: Any, *, nullable: bool = False, minimum: float | None = None) -> float | None:
    if raw is None and nullable:
        return None
    if isinstance(raw, bool) or not isinstance(raw, (int, float)):
        raise _Invalid(f"expected a number{' or null' if nullable else ''}")
    try:
        value = float(raw)
    except OverflowError:  # JSON's integers have no bound; a float has
        raise _Invalid(f"expected a number of at most {_LARGEST:g}") from None
    if math.isnan(value) and nullable:
        return None  # Prometheus' NaN (an empty ratio) is no data, never zero
    if not math.isfinite(value):
        raise _Invalid("expected a finite number")
    if minimum is not None and value < minimum:
        raise _Invalid(f"expected a number >= {minimum:g}{' or null' if nullable else ''}, got {value:g}")
    if abs(value) > _LARGEST:
        raise _Invalid(f"expected a number of at most {_LARGEST:g}, got {value:g}")
    return value


def _number(raw: Any, path: str, *, nullable: bool = False, minimum: float | None = None) -> float | None:
    try:
        return _checked(raw, nullable=nullable, minimum=minimum)
    except _Invalid as exc:
        raise ScenarioError(f"{path}: {exc}") from None


def _mapping(raw: Any, path: str) -> dict:
    if not isinstance(raw, dict):
        raise ScenarioError(f"{path}: expected an object")
    return raw


def _observation(raw: Any, sig: Signal) -> Observation:
    """One observation; an `_Invalid` names the field within it (`value: …`, `bad: …`)."""
    if not isinstance(raw, dict):
        raise _Invalid(": expected an object")
    if "value" not in raw:
        raise _Invalid(".value: required (null for no data)")
    if len(raw) > 1 and (unknown := set(raw) - {"value", "bad", "total"}):
        raise _Invalid(f".{_name(sorted(unknown)[0])}: unknown field")
    field_name = "value"
    try:
        # Every signal measures something that cannot be negative: a latency, a share, a count.
        value = _checked(raw["value"], nullable=True, minimum=0)
        if sig.kind == "ratio" and value is not None and value > 100:
            raise _Invalid("expected a percentage in [0, 100] or null")
        field_name = "bad"
        bad = _checked(raw.get("bad"), nullable=True, minimum=0)
        field_name = "total"
        total = _checked(raw.get("total"), nullable=True, minimum=0)
    except _Invalid as exc:
        raise _Invalid(f".{field_name}: {exc}") from None
    # A ratio's events are requests that failed: never more than the requests. A rate's events are
    # counted per unit of traffic, and one unit may cause several (a page that breaks its policy twice).
    if sig.kind == "ratio" and bad is not None and total is not None and bad > total:
        raise _Invalid(f".bad: {bad:g} events among {total:g} requests (bad > total)")
    return Observation(value, bad, total)


def _series(raw: Any, path: str, sig: Signal) -> Series:
    raw = _mapping(raw, path)
    arms = {}
    for arm in ("canary", "baseline"):
        items = raw.get(arm)
        if not isinstance(items, list):
            raise ScenarioError(f"{path}.{arm}: expected a list of observations")
        observations = []
        for i, item in enumerate(items):
            try:
                observations.append(_observation(item, sig))
            except _Invalid as exc:
                raise ScenarioError(f"{path}.{arm}[{i}]{exc}") from None
        arms[arm] = tuple(observations)
    unknown = set(raw) - {"canary", "baseline"}
    if unknown:
        raise ScenarioError(f"{path}.{_name(sorted(unknown)[0])}: unknown field")
    if len(arms["canary"]) != len(arms["baseline"]):
        raise ScenarioError(
            f"{path}.baseline: expected {len(arms['canary'])} observations like canary, "
            f"got {len(arms['baseline'])}"
        )
    return Series(**arms)


def _apply_thresholds(raw: Any, catalogue: tuple[Signal, ...]) -> tuple[Signal, ...]:
    raw = _mapping(raw, "thresholds")
    by_name = {s.name: s for s in catalogue}
    for name, override in raw.items():
        if name not in by_name:
            raise ScenarioError(f"thresholds.{_name(name)}: unknown signal")
        override = _mapping(override, f"thresholds.{name}")
        if len(override) != 1 or next(iter(override)) not in _THRESHOLD_RULES:
            raise ScenarioError(
                f"thresholds.{name}: expected one of {', '.join(_THRESHOLD_RULES)} with a number"
            )
        (rule, number), = override.items()
        threshold = _number(number, f"thresholds.{name}.{rule}", minimum=0)
        if rule == "max_ratio_to_baseline" and threshold <= 0:
            raise ScenarioError(f"thresholds.{name}.{rule}: expected a ratio > 0, got {threshold:g}")
        by_name[name] = replace(by_name[name], rule=_THRESHOLD_RULES[rule], threshold=threshold)
    return tuple(by_name[s.name] for s in catalogue)


def parse_scenario(raw: Any, catalogue: tuple[Signal, ...] = CATALOGUE) -> Scenario:
    """Validate a decoded JSON scenario (see docs/judge.md) into a `Scenario`."""
    raw = _mapping(raw, "scenario")
    unknown = set(raw) - {"stage_percent", "mirrored", "browser", "interval_seconds", "signals", "thresholds",
                          "policy", "shadow_proven"}
    if unknown:
        raise ScenarioError(f"{_name(sorted(unknown)[0])}: unknown field")
    for required in ("stage_percent", "interval_seconds", "signals"):
        if required not in raw:
            raise ScenarioError(f"{required}: required")
    mirrored = raw.get("mirrored", False)
    if not isinstance(mirrored, bool):
        raise ScenarioError("mirrored: expected true or false")
    browser = raw.get("browser", False)
    if not isinstance(browser, bool):
        raise ScenarioError("browser: expected true or false")
    if browser and not mirrored:
        raise ScenarioError("browser: the browser check runs in the shadow stage only (a mirrored scenario)")
    stage = _number(raw["stage_percent"], "stage_percent")
    if mirrored and stage != 0:
        raise ScenarioError("stage_percent: expected 0 for a mirrored (shadow) scenario: users stay on stable")
    if not mirrored and not 0 < stage <= 100:
        raise ScenarioError("stage_percent: expected a number in (0, 100]")
    interval = _number(raw["interval_seconds"], "interval_seconds")
    if not 1 <= interval <= 86400:
        raise ScenarioError("interval_seconds: expected a number of seconds in [1, 86400]")
    if "thresholds" in raw:
        catalogue = _apply_thresholds(raw["thresholds"], catalogue)
    by_name = {s.name: s for s in catalogue}
    judged = judged_signals(catalogue, mirrored, browser)
    judged_names = {s.name for s in judged}
    signals = {}
    for name, series in _mapping(raw["signals"], "signals").items():
        if name in by_name and name not in judged_names:
            raise ScenarioError(f"signals.{_name(name)}: not shown by a mirror"
                                f"{' or the browser check' if browser else ''}, so not judged in a mirrored scenario")
        if name not in by_name:
            raise ScenarioError(f"signals.{_name(name)}: unknown signal (known: {', '.join(by_name)})")
        signals[name] = _series(series, f"signals.{name}", by_name[name])
    proven = _shadow_proven(raw.get("shadow_proven", []), by_name, mirrored)
    return Scenario(stage, interval, signals, judged, _policy(raw.get("policy", {})), mirrored, browser, proven)


def _shadow_proven(raw: Any, by_name: dict[str, Signal], mirrored: bool) -> frozenset[str]:
    """The names of the signals the shadow stage ended green on: each a signal it can show."""
    if not isinstance(raw, list):
        raise ScenarioError("shadow_proven: expected a list of signal names")
    if raw and mirrored:
        raise ScenarioError("shadow_proven: not for a mirrored scenario (the shadow stage is what proves them)")
    for i, name in enumerate(raw):
        if not isinstance(name, str):
            raise ScenarioError(f"shadow_proven[{i}]: expected a signal name")
        if name not in by_name:
            raise ScenarioError(f"shadow_proven[{i}]: unknown signal {_name(name)}")
        if not by_name[name].shadow_visible:
            raise ScenarioError(f"shadow_proven[{i}]: {name} is not shown by a mirror or the browser check, "
                                "so no shadow stage proves it")
    return frozenset(raw)


def _policy(raw: Any) -> JudgePolicy:
    """The policy's overrides; names and sizes are checked here, ranges by JudgePolicy."""
    known = {f.name for f in fields(JudgePolicy)}
    for key, value in _mapping(raw, "policy").items():
        if key not in known:
            raise ScenarioError(f"policy.{_name(key)}: unknown policy field")
        # NaN and the infinities are JudgePolicy's to name; any other number past _LARGEST is refused here.
        if isinstance(value, int | float) and not isinstance(value, bool) and abs(value) > _LARGEST \
                and (isinstance(value, int) or math.isfinite(value)):
            raise ScenarioError(f"policy.{key}: expected a number of at most {_LARGEST:g}")
    try:
        return JudgePolicy.from_mapping(raw)
    except ValueError as exc:
        raise ScenarioError(str(exc)) from None
