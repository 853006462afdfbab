"""Profiles of the two tracks and what grew between them: pure functions over speedscope JSON.

A profile is what a sampling profiler saw of one track during one stage (py-spy writes it as
speedscope's "sampled" profiles, one per thread, each stack root first). golive reads three
things from it, per frame (a function in a file; the line is left out, since stable and canary are
different builds of the same code and their line numbers differ):

- **self samples**: the samples in which the frame was at the top of a stack, running itself;
- **self share**: self samples / the profile's samples (all threads; py-spy takes no sample of an
  idle thread, and a sample whose top frame only waits is taken as idle), the frame's share of the track's self time;
- **wall share**: self samples / the sampling ticks of the profile (seconds x rate), the share of
  wall time the frame ran.

What grew is the differential view: for each frame, canary's self share minus stable's, in
percentage points. The tracks serve different shares of traffic (1 % on the canary at the first
stage), which moves self shares on its own: a canary that serves little spends a larger share of
its little time in the event loop's own timers. So a frame counts as grown only when both of its
shares grew, each significantly (a two-proportion z-test, z >= `GROWTH_Z`, on the samples as
Bernoulli trials at a fixed rate), and its self share by at least `GROWTH_MIN_POINTS`. A frame
the canary runs more because of its code grows in both; one it runs more because of the traffic
mix does not grow in wall share. Samples are not independent trials while a thread stalls: in a long
GC pause, or kept from a CPU on a busy machine (which py-spy sees as running), it repeats one stack
for as long as the stall lasts. So each frame's longest run of one unchanging stack, up to
`STALL_SECONDS` of samples, counts once in the z-tests. (On a busy machine, a healthy canary's
scrape of /metrics, in none of stable's samples, "grew" 18 points at 100 Hz: what one stall of
about 0.1 s gives a profile of some 50 samples.) Below `MIN_SAMPLES` canary samples (or a
stable sampled for fewer ticks) there is no comparison: the view says so rather than rank noise.

Recommendations are rules over that view and the GC pauses per generation, in order; each names
the evidence it read. They advise a person and change nothing.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "GC_FREEZE_MIN_SHARE", "GC_GROWTH_RATIO", "GC_MIN_PAUSES", "GROWTH_MIN_POINTS", "GROWTH_Z", "HOT_FRAME_MIN_SHARE",
    "MIN_SAMPLES", "Profile", "ProfileError", "STALL_SECONDS", "diff_profiles", "folded", "gc_pause_delta",
    "parse_speedscope", "profile_notes", "profiled_triggers", "PROFILER_LIMIT_CAP_SECONDS", "profiler_time_limit",
    "pyroscope_name", "recommend",
]

MIN_SAMPLES = 20
GROWTH_Z = 3.0
GROWTH_MIN_POINTS = 5.0
HOT_FRAME_MIN_SHARE = 0.10  # of the canary's self time, for a frame to be pointed at
GC_GROWTH_RATIO = 3.0  # canary's mean gen-2 pause over stable's
GC_FREEZE_MIN_SHARE = 0.5  # of the canary's GC pause time spent in generation 2
# Full collections are few (a handful a minute) and one can be stretched by the machine's other
# work: a canary's mean of fewer pauses than this says nothing (one 64-ms pause beside two of 11 ms was seen
# on a healthy canary on a busy machine).
GC_MIN_PAUSES = 5
STALL_SECONDS = 0.5  # the longest stall forgiven once per frame; a thread stuck longer is its code
TOP_GROWN = 10
# Frames of the asyncio loop itself: a frame with one of these under it ran on the loop's thread.
_LOOP_FILES = ("asyncio/base_events.py", "asyncio/events.py", "uvloop")
# Frames that, at the top of a stack, only wait (in C, below them) for work or I/O. py-spy leaves
# out a thread it sees idle by the OS's account; on a saturated machine a thread woken but not yet
# run reads as running, so a pool's idle workers showed as 31 % of a healthy canary's self time.
# Such a sample is taken as idle here too.
_WAITING_LEAVES = (("_worker", "concurrent/futures/thread.py"), ("wait", "/threading.py"),
                   ("_wait_for_tstate_lock", "/threading.py"), ("get", "/queue.py"), ("select", "/selectors.py"))


class ProfileError(ValueError):
    """A profile that is not speedscope's sampled format; the message names the field."""


@dataclass(frozen=True)
class Profile:
    """One track's samples, aggregated per frame (`name (file)`)."""

    track: str
    samples: int
    ticks: float  # seconds sampled x rate: the samples one busy thread would have given
    self_samples: dict[str, int]
    callers: dict[str, dict[str, int]]  # frame -> the frames it was called from, with samples
    on_loop: dict[str, int]  # frame -> self samples with the asyncio loop under it
    stacks: dict[tuple[str, ...], int] = field(repr=False)  # root first, for the flamegraph
    # frame -> its longest run of one unchanging stack, up to STALL_SECONDS: what one stall gave it
    stall_samples: dict[str, int] = field(default_factory=dict)

    def self_share(self, frame: str) -> float:
        return self.self_samples.get(frame, 0) / self.samples if self.samples else 0.0

    def wall_share(self, frame: str) -> float:
        return self.self_samples.get(frame, 0) / self.ticks if self.ticks else 0.0

    def top(self, n: int = 10) -> list[dict]:
        return [{"frame": f, "self_samples": c, "self_share": round(c / self.samples, 4)}
                for f, c in Counter(self.self_samples).most_common(n)]


def _frame_key(frame: Any, where: str) -> str:
    if not isinstance(frame, dict) or not isinstance(frame.get("name"), str):
        raise ProfileError(f"{where}.name: expected a string")
    path = frame.get("file") if isinstance(frame.get("file"), str) else ""
    tail = "/".join(path.replace("\\", "/").split("/")[-2:])
    return f"{frame['name']} ({tail})" if tail else frame["name"]


def parse_speedscope(document: Any, track: str, seconds: float, rate_hz: float) -> Profile:
    """The profile of `track` from a speedscope document (py-spy's `--format speedscope`) that
    sampled for `seconds` at `rate_hz`.

    Args:
        document: the parsed JSON.
        track: "stable" or "canary".
        seconds: how long the profiler sampled (wall time).
        rate_hz: samples a second it was asked for.

    Returns:
        The aggregated `Profile`. Raises `ProfileError` naming the field on another shape."""
    if not isinstance(document, dict):
        raise ProfileError("profile: expected a speedscope JSON object")
    frames = (document.get("shared") or {}).get("frames") if isinstance(document.get("shared"), dict) else None
    if not isinstance(frames, list):
        raise ProfileError("shared.frames: expected a list")
    keys = [_frame_key(f, f"shared.frames[{i}]") for i, f in enumerate(frames)]
    loop_frames = {i for i, f in enumerate(frames) if any(m in str(f.get("file", "")) for m in _LOOP_FILES)}
    waiting = {i for i, f in enumerate(frames) if any(
        f.get("name") == name and str(f.get("file", "")).replace("\\", "/").endswith(end)
        for name, end in _WAITING_LEAVES)}
    profiles = document.get("profiles")
    if not isinstance(profiles, list):
        raise ProfileError("profiles: expected a list")
    stacks: Counter = Counter()
    self_samples: Counter = Counter()
    on_loop: Counter = Counter()
    callers: dict[str, Counter] = {}
    stall_samples: dict[str, int] = {}
    longest_stall = max(1, round(rate_hz * STALL_SECONDS))
    total = 0
    for p, profile in enumerate(profiles):
        samples = profile.get("samples") if isinstance(profile, dict) else None
        if not isinstance(samples, list):
            raise ProfileError(f"profiles[{p}].samples: expected a list of stacks")
        previous, run = None, 0
        for s, stack in enumerate(samples):
            if not isinstance(stack, list) or not all(type(i) is int and 0 <= i < len(keys) for i in stack):
                raise ProfileError(f"profiles[{p}].samples[{s}]: expected frame indices into shared.frames")
            if not stack or stack[-1] in waiting:  # no Python frame, or one that only waits: idle
                previous = None
                continue
            total += 1
            leaf = keys[stack[-1]]
            run = run + 1 if stack == previous else 1  # frame indices carry the line: a stall's stack is exact
            previous = stack
            stall_samples[leaf] = max(stall_samples.get(leaf, 0), min(run, longest_stall))
            self_samples[leaf] += 1
            stacks[tuple(keys[i] for i in stack)] += 1
            if len(stack) > 1:
                callers.setdefault(leaf, Counter())[keys[stack[-2]]] += 1
            if loop_frames.intersection(stack[:-1]):
                on_loop[leaf] += 1
    return Profile(track=track, samples=total, ticks=max(0.0, seconds) * rate_hz, self_samples=dict(self_samples),
                   callers={k: dict(v) for k, v in callers.items()}, on_loop=dict(on_loop), stacks=dict(stacks),
                   stall_samples=stall_samples)


def _z(a_hits: int, a_n: float, b_hits: int, b_n: float) -> float:
    """Two-proportion z statistic of a (canary) over b (stable), pooled; 0 when undefined."""
    if a_n <= 0 or b_n <= 0:
        return 0.0
    pooled = (a_hits + b_hits) / (a_n + b_n)
    spread = math.sqrt(pooled * (1 - pooled) * (1 / a_n + 1 / b_n)) if 0 < pooled < 1 else 0.0
    return (a_hits / a_n - b_hits / b_n) / spread if spread else 0.0


def diff_profiles(canary: Profile, stable: Profile, top: int = TOP_GROWN, stage_percent: float = 50) -> dict:
    """The differential view canary vs stable: every frame's self share in both, and the frames
    that grew (see the module's docstring for the rule), most grown first. At 100 % stable serves
    no user: every frame that answers users grows in both shares, and nothing is compared.

    Returns:
        `{"comparable", "reason", "samples", "grown": [...], "top_canary", "top_stable"}`; a grown
        frame has its shares, points grown, ratio, z scores, the samples of its longest stall (counted
        once in the z scores), its caller in the canary and the share of its samples that ran on
        the asyncio loop's thread."""
    view = {"comparable": True, "reason": "", "samples": {"canary": canary.samples, "stable": stable.samples},
            "grown": [], "top_canary": canary.top(), "top_stable": stable.top()}
    # The canary needs samples to rank; the stable only needs to have been sampled long enough: a
    # stable that is almost idle against a canary busy in one frame is growth, not too little data.
    few = ([f"canary under {MIN_SAMPLES} samples"] if canary.samples < MIN_SAMPLES else []) + (
        [f"stable sampled under {MIN_SAMPLES} ticks"] if stable.ticks < MIN_SAMPLES else [])
    if few:
        view.update(comparable=False, reason=f"too few samples to compare ({', '.join(few)})")
        return view
    if stage_percent >= 100:
        view.update(comparable=False, reason="stable serves no user at 100 %: nothing to compare the canary with")
        return view
    grown = []
    for frame, hits in canary.self_samples.items():
        base = stable.self_samples.get(frame, 0)
        points = 100 * (canary.self_share(frame) - stable.self_share(frame))
        repeats = canary.stall_samples.get(frame, 1) - 1  # one stall's samples count as one
        z_self = _z(hits - repeats, canary.samples - repeats, base, stable.samples)
        z_wall = _z(hits - repeats, max(canary.ticks, canary.samples) - repeats, base,
                    max(stable.ticks, stable.samples))
        if points < GROWTH_MIN_POINTS or z_self < GROWTH_Z or z_wall < GROWTH_Z:
            continue
        caller = max((canary.callers.get(frame) or {"": 0}).items(), key=lambda kv: kv[1])[0] or None
        grown.append({
            "frame": frame, "caller": caller,
            "canary_self_share": round(canary.self_share(frame), 4),
            "stable_self_share": round(stable.self_share(frame), 4),
            "canary_wall_share": round(canary.wall_share(frame), 4),
            "stable_wall_share": round(stable.wall_share(frame), 4),
            "points": round(points, 2),
            "ratio": round(canary.self_share(frame) / stable.self_share(frame), 2) if base else None,
            "z_self": round(z_self, 2), "z_wall": round(z_wall, 2), "stall_samples": repeats + 1,
            "on_loop_share": round(canary.on_loop.get(frame, 0) / hits, 4),
        })
    grown.sort(key=lambda g: -g["points"])
    view["grown"] = grown[:top]
    view["reason"] = (f"{len(grown)} frame(s) grew beyond noise" if grown else "no frame grew beyond noise")
    return view


def gc_pause_delta(before: dict | None, after: dict | None) -> dict | None:
    """The GC pauses per generation between two readings of a track's histogram
    (`{generation: {"seconds", "count"}}`); None when either reading is missing. A counter that went
    down (the service restarted) counts from zero."""
    if before is None or after is None:
        return None
    delta = {}
    for generation, now in after.items():
        then = before.get(generation) or {}
        restarted = now.get("count", 0) < then.get("count", 0)
        delta[generation] = {k: now.get(k, 0.0) - (0.0 if restarted else then.get(k, 0.0))
                             for k in ("seconds", "count")}
    return delta


def profiled_triggers(signals: dict, triggers: list[str] | tuple[str, ...], profiled: set[str]) -> list[str]:
    """The signals among `profiled` (latency, event loop, GC) that a decision stood on: a breach
    or a deviation in its verdict, or a trigger naming them. Empty: no profile belongs with it."""
    named = {t.split(":", 1)[1] for t in triggers if t.startswith("breach:")}
    bad = {n for n, v in (signals or {}).items() if isinstance(v, dict) and v.get("verdict") in ("breach", "deviation")}
    return sorted((named | bad) & profiled)


def _short(frame: str) -> str:
    return frame.split(" (", 1)[0]


def _where(grown: dict) -> str:
    """A grown frame as a person names it: `frame` in `caller()`."""
    return f"`{_short(grown['frame'])}`" + (f" in `{_short(grown['caller'])}()`" if grown.get("caller") else "")


def recommend(view: dict, gc_pauses: dict | None = None, signals: list[str] = (),
              evidence: dict[str, str] | None = None, loop_signal: str = "event_loop_p95_ms",
              gc_signal: str = "gc_pause_avg_ms") -> list[dict]:
    """Advice from the differential view and the GC pauses, rule by rule, in this order:

    1. **Hot frame.** The most grown frame holds at least `HOT_FRAME_MIN_SHARE` of the canary's self
       time: it is named with its caller and both shares. When loop lag is among the decision's
       signals and the frame ran on the asyncio loop's thread, the advice is to move it to an
       executor; otherwise to look at what changed in it.
    2. **Gen-2 pauses grew.** The canary's mean generation-2 pause is `GC_GROWTH_RATIO` times the
       stable's or more, the canary's a mean of at least `GC_MIN_PAUSES` pauses: named with the ratio
       (and with rule 1's frame when there is one, since allocation in it is the first suspect).
    3. **Gen 2 dominates.** The decision stood on the GC signal and generation 2 takes at least
       `GC_FREEZE_MIN_SHARE` of the canary's GC pause time, over `GC_MIN_PAUSES` pauses or more:
       objects that live for the process' life are traced again at every full collection;
       `gc.freeze()` after start-up takes them out of it. (Not on its own: a healthy service's full
       collections may dominate its tiny pauses.)

    Args:
        view: `diff_profiles`' answer.
        gc_pauses: per track, per generation, `{"seconds": total pause, "count": pauses}` over the
            stage (None: not read).
        signals: the profiled signals the decision stood on (`profiled_triggers`).
        evidence: the names of the files these came from, `{"profile_diff": ..., "gc_pauses": ...}`.
        loop_signal: the event-loop lag signal's name.
        gc_signal: the GC pause signal's name.

    Returns:
        A list of `{"rule", "advice", "evidence": [...], "frame"?}`; empty when nothing rose above noise."""
    evidence = evidence or {}
    found = []
    hot = next(iter(view.get("grown") or []), None)
    if hot and hot["canary_self_share"] >= HOT_FRAME_MIN_SHARE:
        said = (f"{_where(hot)} holds {hot['canary_self_share']:.0%} of canary self time "
                f"(stable {hot['stable_self_share']:.0%}, +{hot['points']:g} points)")
        if loop_signal in signals and hot["on_loop_share"] >= 0.5:
            advice = f"{said}: a synchronous frame on the event loop during loop lag; move it to an executor " \
                     "(loop.run_in_executor) or make it cheaper"
            rule = "sync-frame-on-loop"
        else:
            advice = f"{said}: it grew in this release; look at what changed in it"
            rule = "hot-frame"
        found.append({"rule": rule, "frame": hot["frame"], "advice": advice,
                      "evidence": [f"{evidence.get('profile_diff', 'profile diff')}: grown[0]"]})
    gc_file = evidence.get("gc_pauses", "GC pauses")
    canary_gc, stable_gc = (gc_pauses or {}).get("canary") or {}, (gc_pauses or {}).get("stable") or {}
    # The canary's mean must rest on GC_MIN_PAUSES; stable's on one: a stretched stable pause only
    # lowers the ratio, and a healthy stable may collect generation 2 rarely.
    mean = lambda g, least: g["seconds"] / g["count"] if g and g.get("count", 0) >= least else None  # noqa: E731
    c2, s2 = mean(canary_gc.get("2"), GC_MIN_PAUSES), mean(stable_gc.get("2"), 1)
    if c2 is not None and s2 and c2 / s2 >= GC_GROWTH_RATIO:
        advice = f"gen-2 pauses grew {c2 / s2:.1f}x ({s2 * 1000:.2f} -> {c2 * 1000:.2f} ms mean)"
        if found:
            advice += f" and {found[0]['advice'].split(':', 1)[0]}: look at what it allocates"
        found.append({"rule": "gen2-pauses-grew", "advice": advice, "evidence": [
            f"{gc_file}.canary.2", f"{gc_file}.stable.2", *(found[0]["evidence"] if found else [])]})
    total = sum(g.get("seconds", 0.0) for g in canary_gc.values())
    gen2 = (canary_gc.get("2") or {}).get("seconds", 0.0)
    if gc_signal in signals and total > 0 and gen2 / total >= GC_FREEZE_MIN_SHARE \
            and (canary_gc.get("2") or {}).get("count", 0) >= GC_MIN_PAUSES:
        found.append({"rule": "gen2-dominates", "advice": f"GC generation 2 holds {gen2 / total:.0%} of the canary's "
                      "pause time: consider gc.freeze() after start-up so long-lived objects are not traced again",
                      "evidence": [f"{gc_file}.canary"]})
    return found


def _grown_text(grown: dict) -> str:
    return (f"{_where(grown)} {grown['canary_self_share']:.0%} of canary self time "
            f"(stable {grown['stable_self_share']:.0%}, +{grown['points']:g} points)")


def profile_notes(summary: dict | None, top: int = 3) -> list[str]:
    """A stage's (or a Hold's) profile summary in a few lines for a person: the frames that grew
    most in the canary, or why none is named, then each piece of advice. Empty when profiling was off.

    Args:
        summary: the `profile` a stage record or a Hold's snapshot carries.
        top: how many grown frames to name."""
    if not summary:
        return []
    if summary.get("error"):
        return [f"profiles not written: {summary['error']}"]
    notes = [f"profile not taken: {why}" for why in (summary.get("not_taken") or {}).values()]
    diff = summary.get("diff")
    if diff:
        grown = (diff.get("grown") or [])[:top]
        notes.append("grown in the canary: " + "; ".join(_grown_text(g) for g in grown) if grown
                     else f"canary vs stable: {diff.get('reason') or 'no frame grew beyond noise'}")
    notes += [f"advice: {r['advice']} [evidence: {', '.join(r.get('evidence') or [])}]"
              for r in summary.get("recommendations") or []]
    return notes


def folded(profile: Profile) -> str:
    """The profile as folded stacks (`root;caller;frame count` a line, sorted), the format
    Pyroscope's `/ingest` reads by default and flamegraph tools read too. `;` and a line break
    inside a frame's name would split it, so they are replaced."""
    def clean(frame: str) -> str:
        return frame.replace(";", ":").replace("\n", " ")

    return "".join(f"{';'.join(clean(f) for f in stack)} {count}\n" for stack, count in sorted(profile.stacks.items()))


def pyroscope_name(app: str, tags: dict[str, str]) -> str:
    """Pyroscope's `name` parameter: `<app>.cpu{key=value,...}`, tags sorted. A value may not hold
    the characters that delimit the tag list; they are replaced by `_`."""
    def clean(value: str) -> str:
        return "".join("_" if c in "{},= " else c for c in str(value))

    return f"{app}.cpu{{{','.join(f'{clean(k)}={clean(v)}' for k, v in sorted(tags.items()))}}}"


# However long a stage may be set to last (a maximum dwell of a week), py-spy stops by itself
# within this: a profile longer than a few hours says no more, and an orphan must not run for days.
PROFILER_LIMIT_CAP_SECONDS = 6 * 3600


def profiler_time_limit(longest_dwell: float, hold_budget: float, approval_wait: float) -> int:
    """The seconds after which a stage's py-spy stops by itself: twice the stage's longest run
    (its longest dwell, its holds and a person's approval wait), so that only a profiler whose
    flow process died ever reaches it, and never more than `PROFILER_LIMIT_CAP_SECONDS`."""
    return min(PROFILER_LIMIT_CAP_SECONDS, int(2 * (longest_dwell + hold_budget + approval_wait)) + 300)
