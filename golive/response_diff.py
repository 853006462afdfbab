"""The shadow stage's response comparison, after Diffy: the canary (the candidate) answers copies of
users' requests beside stable (the primary, which answered the user) and a second instance of the
stable version (the secondary). A field whose value differs between primary and secondary is noise
(a timestamp, an id, a price that moved); a route's field is a finding only when the candidate
differs from the primary there more often than the secondary does, by more than a margin, on
enough requests and beyond chance: both rates are measured on the same requests, so chance is
judged on the requests where exactly one of the two differed (McNemar's exact test), and the noise
rate's own sampling error counts as much as the candidate's.

Pure: the answers come in as the services keep them (`sandbox.service`'s `/__golive/responses`,
read by `tasks.service.read_responses`), the report goes out as a JSON-ready object.

    report = compare_responses(primary, secondary, candidate, margin_pct=1.0, min_pairs=50)
    report.findings, report.summary(), report.as_dict()
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from golive.validation import REDACTED, names_a_secret

__all__ = ["RESPONSE_FIELDS", "FieldDiff", "Finding", "ResponseDiffReport", "binomial_sf", "checked_responses",
           "compare_responses", "flatten_response"]

# What a service keeps of each answer (`json` is null for a body that is not JSON or too long).
RESPONSE_FIELDS = ("request_id", "at_ns", "method", "path", "route", "status", "shadow", "content_type", "bytes",
                   "sha256", "json")

EXAMPLES_KEPT = 3
# A list's items are compared one by one up to here; its length is a field of its own.
LIST_ITEMS_COMPARED = 50
# The depth a body is flattened to: deeper values are compared whole.
DEPTH_FLATTENED = 12
VALUE_CHARS_SHOWN = 200
ABSENT = "<absent>"


def checked_responses(answer: Any, where: str) -> dict[str, Any]:
    """A service's answer to GET /__golive/responses, checked: `{"clock": "monotonic_ns", "now_ns":
    int, "responses": [response, ...]}`, each with `RESPONSE_FIELDS`; ValueError, one line naming
    `where` and the field, else."""
    if not isinstance(answer, dict):
        raise ValueError(f"{where}: expected a JSON object, got {type(answer).__name__}")
    if answer.get("clock") != "monotonic_ns":
        raise ValueError(f"{where}: clock: expected 'monotonic_ns', got {str(answer.get('clock'))[:40]!r}")
    now_ns = answer.get("now_ns")
    if isinstance(now_ns, bool) or not isinstance(now_ns, int):
        raise ValueError(f"{where}: now_ns: expected whole nanoseconds, got {str(now_ns)[:40]!r}")
    responses = answer.get("responses")
    if not isinstance(responses, list):
        raise ValueError(f"{where}: responses: expected a list, got {type(responses).__name__}")
    for index, response in enumerate(responses):
        at = f"{where}: responses[{index}]"
        if not isinstance(response, dict):
            raise ValueError(f"{at}: expected an object, got {type(response).__name__}")
        if missing := [name for name in RESPONSE_FIELDS if name not in response]:
            raise ValueError(f"{at}.{missing[0]}: missing")
        if not isinstance(response["request_id"], str) or not response["request_id"]:
            raise ValueError(f"{at}.request_id: expected a non-empty string")
        for name in ("at_ns", "status", "bytes"):
            if isinstance(response[name], bool) or not isinstance(response[name], int):
                raise ValueError(f"{at}.{name}: expected a whole number, got {str(response[name])[:40]!r}")
        if not isinstance(response["shadow"], bool):
            raise ValueError(f"{at}.shadow: expected true or false, got {str(response['shadow'])[:40]!r}")
        for name in ("method", "path", "route", "content_type", "sha256"):
            if not isinstance(response[name], str):
                raise ValueError(f"{at}.{name}: expected a string, got {type(response[name]).__name__}")
    return answer


def flatten_response(answer: Mapping[str, Any]) -> dict[str, Any]:
    """An answer as field paths and their values: `status`, and the JSON body's leaves under `body`
    (`body.price`, `body.detail[0].field`, a list's `body.detail[]` length); a body that is not
    JSON (or too long to keep) by its `content_type`, `bytes` and `sha256`."""
    fields: dict[str, Any] = {"status": answer.get("status")}
    body = answer.get("json")
    if body is None:
        for name in ("content_type", "bytes", "sha256"):
            fields[name] = answer.get(name)
    else:
        _flatten(body, "body", fields, 0)
    return fields


def _flatten(value: Any, path: str, into: dict[str, Any], depth: int) -> None:
    if depth >= DEPTH_FLATTENED:
        into[path] = value
    elif isinstance(value, dict):
        if not value:
            into[path] = {}
        for key, item in value.items():
            _flatten(item, f"{path}.{key}", into, depth + 1)
    elif isinstance(value, list):
        into[f"{path}[]"] = len(value)
        for index, item in enumerate(value[:LIST_ITEMS_COMPARED]):
            _flatten(item, f"{path}[{index}]", into, depth + 1)
    else:
        into[path] = value


def binomial_sf(successes: int, trials: int, p: float) -> float:
    """P(X >= successes) for X ~ Binomial(trials, p), summed in logs."""
    if successes <= 0:
        return 1.0
    if successes > trials or p <= 0.0:
        return 0.0
    if p >= 1.0:
        return 1.0
    log_p, log_q = math.log(p), math.log1p(-p)
    log_terms = [math.lgamma(trials + 1) - math.lgamma(k + 1) - math.lgamma(trials - k + 1) + k * log_p
                 + (trials - k) * log_q for k in range(successes, trials + 1)]
    top = max(log_terms)
    return min(1.0, math.exp(top) * sum(math.exp(t - top) for t in log_terms))


@dataclass(frozen=True)
class FieldDiff:
    """One route's field over the requests all three answered: how often the candidate differed
    from the primary (raw), how often the secondary did (noise), and on how many requests only the
    candidate did (`raw_only`) or only the secondary (`noise_only`)."""

    route: str
    field: str
    pairs: int
    raw: int
    noise: int
    raw_only: int
    noise_only: int
    p_value: float

    @property
    def raw_pct(self) -> float:
        return 100.0 * self.raw / self.pairs if self.pairs else 0.0

    @property
    def noise_pct(self) -> float:
        return 100.0 * self.noise / self.pairs if self.pairs else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {"route": self.route, "field": self.field, "pairs": self.pairs, "raw": self.raw,
                "noise": self.noise, "raw_only": self.raw_only, "noise_only": self.noise_only,
                "raw_pct": round(self.raw_pct, 3), "noise_pct": round(self.noise_pct, 3),
                "p_value": self.p_value}


@dataclass(frozen=True)
class Finding:
    """A route's field where the candidate differs beyond the noise, with up to three of the
    requests it differed on: the primary's and the candidate's values."""

    diff: FieldDiff
    examples: tuple[dict[str, Any], ...]

    def as_dict(self) -> dict[str, Any]:
        return {**self.diff.as_dict(), "examples": list(self.examples)}

    def line(self) -> str:
        d = self.diff
        return (f"{d.route} {d.field}: {d.raw_pct:.1f} % differ against {d.noise_pct:.1f} % noise "
                f"over {d.pairs} requests")


@dataclass(frozen=True)
class ResponseDiffReport:
    """What the comparison saw and found; `as_dict` is the evidence file's JSON."""

    margin_pct: float
    min_pairs: int
    alpha: float
    counts: Mapping[str, int]
    routes: Mapping[str, int]
    fields: tuple[FieldDiff, ...]
    findings: tuple[Finding, ...]
    ignored_fields: tuple[str, ...] = ()
    too_few: tuple[str, ...] = ()

    @property
    def compared(self) -> int:
        return sum(self.routes.values())

    @property
    def passed(self) -> bool:
        return not self.findings

    def summary(self) -> str:
        """One line: how many requests were compared and what, if anything, differs beyond the noise."""
        seen = (f"{self.compared} requests compared on {len(self.routes)} routes "
                f"(of {self.counts.get('candidate', 0)} canary answers)")
        if self.findings:
            shown = "; ".join(finding.line() for finding in self.findings[:3])
            more = f"; and {len(self.findings) - 3} more" if len(self.findings) > 3 else ""
            return f"{len(self.findings)} response differences beyond the noise in {seen}: {shown}{more}"
        if not self.compared:
            return f"no request answered by stable, its secondary and the canary alike: nothing compared ({seen})"
        thin = f"; {len(self.too_few)} routes under {self.min_pairs} requests not judged" if self.too_few else ""
        return f"no response difference beyond the noise in {seen}{thin}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": "shadow_response_diff",
            "passed": self.passed,
            "summary": self.summary(),
            "margin_pct": self.margin_pct, "min_pairs": self.min_pairs, "alpha": self.alpha,
            "ignored_fields": list(self.ignored_fields),
            "answers": dict(self.counts),
            "compared_by_route": dict(self.routes),
            "routes_with_too_few_requests": list(self.too_few),
            "findings": [finding.as_dict() for finding in self.findings],
            "fields": [diff.as_dict() for diff in self.fields if diff.raw or diff.noise],
        }


def _by_request_id(answers: Iterable[Mapping[str, Any]], shadow: bool | None) -> dict[str, Mapping[str, Any]]:
    """The answers keyed by request id (the first one of an id; those of the other kind left out
    when `shadow` says which kind is wanted)."""
    kept: dict[str, Mapping[str, Any]] = {}
    for answer in answers:
        request_id = answer.get("request_id")
        if isinstance(request_id, str) and request_id and (shadow is None or bool(answer.get("shadow")) == shadow):
            kept.setdefault(request_id, answer)
    return kept


def _ignored(path: str, ignored: Sequence[str]) -> bool:
    """A field is ignored by its whole path or by its own name (`version` ignores `body.version`)."""
    name = path.rsplit(".", 1)[-1]
    return path in ignored or name in ignored


def _shown(value: Any, path: str) -> Any:
    """A value as the evidence shows it: cut short, and masked under a field that names a secret."""
    if names_a_secret(path.rsplit(".", 1)[-1]) and value is not ABSENT:
        return REDACTED
    if value is ABSENT or isinstance(value, (int, float, bool)) or value is None:
        return value
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= VALUE_CHARS_SHOWN else text[:VALUE_CHARS_SHOWN] + "…"


def compare_responses(
    primary: Iterable[Mapping[str, Any]],
    secondary: Iterable[Mapping[str, Any]],
    candidate: Iterable[Mapping[str, Any]],
    *,
    margin_pct: float = 1.0,
    min_pairs: int = 50,
    alpha: float = 0.01,
    ignored_fields: Sequence[str] = (),
) -> ResponseDiffReport:
    """Pair the three services' answers by request id (the primary's to users, the secondary's and
    the candidate's to the mirror's copies) and count, per route (method and route) and field, the
    requests where the candidate's value differs from the primary's (raw) and where the
    secondary's does (noise). A finding: at least `min_pairs` requests on the route, a raw rate
    above the noise rate by more than `margin_pct` points, and, of the requests where only one of
    the two differed, a share the candidate's that an even split would reach with probability below
    `alpha` (McNemar's exact test, one-sided)."""
    if not 0 <= margin_pct < 100:
        raise ValueError(f"margin_pct: expected percentage points in [0, 100), got {margin_pct!r}")
    if isinstance(min_pairs, bool) or not isinstance(min_pairs, int) or min_pairs < 1:
        raise ValueError(f"min_pairs: expected a whole number >= 1, got {min_pairs!r}")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha: expected a probability in (0, 1), got {alpha!r}")
    primary_by_id = _by_request_id(primary, shadow=False)
    secondary_by_id = _by_request_id(secondary, shadow=None)
    candidate_by_id = _by_request_id(candidate, shadow=True)
    counts = {"primary": len(primary_by_id), "secondary": len(secondary_by_id), "candidate": len(candidate_by_id)}

    routes: dict[str, int] = {}
    raw: dict[tuple[str, str], int] = {}
    noise: dict[tuple[str, str], int] = {}
    raw_only: dict[tuple[str, str], int] = {}
    noise_only: dict[tuple[str, str], int] = {}
    examples: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for request_id, first in primary_by_id.items():
        second, third = secondary_by_id.get(request_id), candidate_by_id.get(request_id)
        if second is None or third is None:
            continue
        route = f"{first.get('method')} {first.get('route') or first.get('path')}"
        routes[route] = routes.get(route, 0) + 1
        p_fields, s_fields, c_fields = flatten_response(first), flatten_response(second), flatten_response(third)
        for path in p_fields.keys() | s_fields.keys() | c_fields.keys():
            if _ignored(path, ignored_fields):
                continue
            key, value = (route, path), p_fields.get(path, ABSENT)
            noise_differs, raw_differs = s_fields.get(path, ABSENT) != value, c_fields.get(path, ABSENT) != value
            noise[key] = noise.get(key, 0) + noise_differs
            raw[key] = raw.get(key, 0) + raw_differs
            raw_only[key] = raw_only.get(key, 0) + (raw_differs and not noise_differs)
            noise_only[key] = noise_only.get(key, 0) + (noise_differs and not raw_differs)
            if raw_differs:
                kept = examples.setdefault(key, [])
                if len(kept) < EXAMPLES_KEPT:
                    kept.append({"request_id": request_id, "primary": _shown(value, path),
                                 "candidate": _shown(c_fields.get(path, ABSENT), path)})

    diffs, findings = [], []
    for key in sorted(raw):
        route, path = key
        pairs = routes[route]
        discordant = raw_only[key] + noise_only[key]
        diff = FieldDiff(route, path, pairs, raw[key], noise[key], raw_only[key], noise_only[key],
                         binomial_sf(raw_only[key], discordant, 0.5))
        diffs.append(diff)
        if pairs >= min_pairs and diff.raw_pct - diff.noise_pct > margin_pct and diff.p_value < alpha:
            findings.append(Finding(diff, tuple(examples.get(key, ()))))
    findings.sort(key=lambda finding: (finding.diff.noise_pct - finding.diff.raw_pct, finding.diff.route))
    too_few = tuple(sorted(route for route, pairs in routes.items() if pairs < min_pairs))
    return ResponseDiffReport(margin_pct, min_pairs, alpha, counts, dict(sorted(routes.items())), tuple(diffs),
                              tuple(findings), tuple(ignored_fields), too_few)
