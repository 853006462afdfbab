"""The profile math: speedscope read, what grew, the advice, the folded stacks and Pyroscope's name."""

from __future__ import annotations

import pytest

from golive.profiles import (
    GC_MIN_PAUSES, MIN_SAMPLES, STALL_SECONDS, ProfileError, diff_profiles, folded, gc_pause_delta, parse_speedscope,
    profile_notes, profiled_triggers, pyroscope_name, recommend,
)

FRAMES = [
    {"name": "run_forever", "file": "/usr/lib/python3.11/asyncio/base_events.py", "line": 600},
    {"name": "handle", "file": "/srv/app/server.py", "line": 10},
    {"name": "quote", "file": "/srv/app/service.py", "line": 20},
    {"name": "burn", "file": "/srv/app/service.py", "line": 30},
    {"name": "encode", "file": "/srv/app/json.py", "line": 40},
    {"name": "worker", "file": "/srv/app/pool.py", "line": 50},
]
LOOP, HANDLE, QUOTE, BURN, ENCODE, WORKER = range(6)


def speedscope(stacks: dict[tuple[int, ...], int], stalls: tuple[tuple[tuple[int, ...], int], ...] = ()) -> dict:
    """Samples as a sampler takes them: each stack's spread evenly over the time sampled; then each
    stall, one stack repeated n times in a row."""
    spread = sorted(((i + 0.5) / n, order, stack) for order, (stack, n) in enumerate(stacks.items()) for i in range(n))
    samples = [list(stack) for *_, stack in spread] + [list(stack) for stack, n in stalls for _ in range(n)]
    return {"shared": {"frames": FRAMES},
            "profiles": [{"type": "sampled", "samples": samples, "weights": [0.05] * len(samples)}]}


def profile(track: str, stacks: dict, seconds: float = 10.0, rate: float = 20.0, stalls=()):
    return parse_speedscope(speedscope(stacks, stalls), track, seconds, rate)


def test_self_samples_are_the_top_of_each_stack_and_lines_are_left_out():
    p = profile("canary", {(LOOP, HANDLE, QUOTE): 3, (LOOP, HANDLE, QUOTE, BURN): 5})
    assert p.samples == 8 and p.ticks == 200
    assert p.self_samples == {"quote (app/service.py)": 3, "burn (app/service.py)": 5}
    assert p.callers["burn (app/service.py)"] == {"quote (app/service.py)": 5}
    assert p.on_loop["burn (app/service.py)"] == 5
    assert p.self_share("burn (app/service.py)") == 5 / 8


def test_a_sample_with_no_python_frame_is_left_out():
    document = speedscope({(LOOP, QUOTE): 2})
    document["profiles"][0]["samples"].append([])
    assert parse_speedscope(document, "canary", 1, 20).samples == 2


def test_a_pool_worker_or_a_lock_waiting_at_the_top_of_its_stack_is_idle_not_self_time():
    # Seen on a saturated machine: a healthy canary's idle executor threads read as running.
    document = speedscope({(LOOP, QUOTE): 4})
    waiting = [{"name": "_worker", "file": "/usr/lib/python3.11/concurrent/futures/thread.py", "line": 81},
               {"name": "wait", "file": "/usr/lib/python3.11/threading.py", "line": 320},
               {"name": "select", "file": "/usr/lib/python3.11/selectors.py", "line": 468}]
    document["shared"]["frames"] = FRAMES + waiting
    first = len(FRAMES)
    document["profiles"][0]["samples"] += [[first], [first], [first, first + 1], [LOOP, first + 2]]
    document["profiles"][0]["samples"].append([first + 1, QUOTE])  # waited, then ran: counted
    p = parse_speedscope(document, "canary", 1, 20)
    assert p.samples == 5 and p.self_samples == {"quote (app/service.py)": 5}


@pytest.mark.parametrize(("document", "field"), [
    ([], "profile"),
    ({"profiles": []}, "shared.frames"),
    ({"shared": {"frames": [{"file": "x"}]}, "profiles": []}, r"shared.frames\[0\].name"),
    ({"shared": {"frames": FRAMES}, "profiles": [{"samples": [[9]]}]}, r"profiles\[0\].samples\[0\]"),
    ({"shared": {"frames": FRAMES}, "profiles": [{"samples": "x"}]}, r"profiles\[0\].samples"),
])
def test_another_shape_is_refused_naming_the_field(document, field):
    with pytest.raises(ProfileError, match=f"^{field}:"):
        parse_speedscope(document, "canary", 1, 1)


def test_a_function_the_canary_burns_in_is_the_top_grown_frame_with_its_caller():
    stable = profile("stable", {(LOOP, HANDLE, QUOTE): 60, (LOOP, HANDLE, ENCODE): 40})
    canary = profile("canary", {(LOOP, HANDLE, QUOTE): 60, (LOOP, HANDLE, ENCODE): 40,
                                (LOOP, HANDLE, QUOTE, BURN): 100})
    view = diff_profiles(canary, stable)
    assert view["comparable"]
    (grown,) = view["grown"]
    assert grown["frame"] == "burn (app/service.py)" and grown["caller"] == "quote (app/service.py)"
    assert grown["canary_self_share"] == 0.5 and grown["stable_self_share"] == 0 and grown["points"] == 50
    assert grown["on_loop_share"] == 1.0


def test_a_share_moved_by_the_traffic_mix_alone_is_not_growth():
    # The canary serves little: its self time is mostly the loop's own work, but no more of it per
    # second than the stable's, so the wall share says it did not grow.
    stable = profile("stable", {(LOOP,): 40, (LOOP, HANDLE, QUOTE): 160})
    canary = profile("canary", {(LOOP,): 40, (LOOP, HANDLE, QUOTE): 10})
    assert diff_profiles(canary, stable)["grown"] == []


def test_a_small_difference_is_noise():
    stable = profile("stable", {(LOOP, HANDLE, QUOTE): 100, (LOOP, HANDLE, ENCODE): 100})
    canary = profile("canary", {(LOOP, HANDLE, QUOTE): 108, (LOOP, HANDLE, ENCODE): 92})
    assert diff_profiles(canary, stable)["grown"] == []


def test_one_stall_counts_once_so_a_healthy_canary_stalled_in_one_frame_has_not_grown():
    # Seen at 100 Hz on a busy machine: a healthy canary stalled once in its scrape of /metrics,
    # samples of one unchanging stack on top of its 50, the stable none in that frame.
    healthy = {(LOOP, HANDLE, QUOTE): 30, (LOOP, HANDLE): 20}
    stable = profile("stable", healthy, seconds=8, rate=100)
    stalled = profile("canary", healthy, seconds=8, rate=100, stalls=(((LOOP, ENCODE), 12),))
    assert stalled.stall_samples["encode (app/json.py)"] == 12 and stalled.self_share("encode (app/json.py)") > 0.15
    assert diff_profiles(stalled, stable)["grown"] == []
    # The same 12 samples spread through the sampling are 12 events: the frame grew.
    spread = profile("canary", {**healthy, (LOOP, ENCODE): 12}, seconds=8, rate=100)
    (grown,) = diff_profiles(spread, stable)["grown"]
    assert grown["frame"] == "encode (app/json.py)" and grown["stall_samples"] == 1


def test_a_thread_stuck_longer_than_a_stall_is_its_code_and_grows():
    healthy = {(LOOP, HANDLE, QUOTE): 30, (LOOP, HANDLE): 20}
    stuck = profile("canary", healthy, seconds=8, rate=100, stalls=(((LOOP, BURN), 200),))
    assert stuck.stall_samples["burn (app/service.py)"] == 100 * STALL_SECONDS
    (grown,) = diff_profiles(stuck, profile("stable", healthy, seconds=8, rate=100))["grown"]
    assert grown["frame"] == "burn (app/service.py)" and grown["stall_samples"] == 100 * STALL_SECONDS


def test_too_few_samples_are_not_compared():
    view = diff_profiles(profile("canary", {(LOOP, BURN): MIN_SAMPLES - 1}), profile("stable", {(LOOP,): 100}))
    assert not view["comparable"] and "canary under" in view["reason"] and view["grown"] == []
    view = diff_profiles(profile("canary", {(LOOP, BURN): 100}), profile("stable", {(LOOP,): 1}, seconds=0.5))
    assert not view["comparable"] and "stable sampled under" in view["reason"]


def test_an_almost_idle_stable_still_shows_what_the_canary_burns():
    view = diff_profiles(profile("canary", {(LOOP, HANDLE, QUOTE, BURN): 80, (LOOP, HANDLE, QUOTE): 20}),
                         profile("stable", {(LOOP, HANDLE, QUOTE): 5}))
    assert view["comparable"] and view["grown"][0]["frame"] == "burn (app/service.py)"


def test_at_100_percent_stable_serves_no_user_and_nothing_is_compared():
    # What answers users runs only on the canary at 100 %: every such frame would read as grown.
    canary = profile("canary", {(LOOP, HANDLE, QUOTE): 150, (LOOP, HANDLE, ENCODE): 50})
    stable = profile("stable", {(LOOP,): 30})
    assert diff_profiles(canary, stable, stage_percent=50)["grown"]
    view = diff_profiles(canary, stable, stage_percent=100)
    assert not view["comparable"] and view["grown"] == [] and "stable serves no user at 100 %" in view["reason"]
    assert recommend(view) == []


def test_profiled_triggers_are_the_latency_loop_and_gc_signals_the_decision_stood_on():
    profiled = {"api_p95_ms", "event_loop_p95_ms", "gc_pause_avg_ms"}
    signals = {"api_p95_ms": {"verdict": "deviation"}, "http_5xx_pct": {"verdict": "breach"},
               "gc_pause_avg_ms": {"verdict": "pass"}}
    assert profiled_triggers(signals, ["breach:event_loop_p95_ms"], profiled) == ["api_p95_ms", "event_loop_p95_ms"]
    assert profiled_triggers({"http_5xx_pct": {"verdict": "breach"}}, ["breach:http_5xx_pct"], profiled) == []


def _burning_view():
    stable = profile("stable", {(LOOP, HANDLE, QUOTE): 100})
    canary = profile("canary", {(LOOP, HANDLE, QUOTE): 100, (LOOP, HANDLE, QUOTE, BURN): 100})
    return diff_profiles(canary, stable)


def test_a_hot_frame_on_the_loop_during_loop_lag_is_advised_to_an_executor_naming_its_evidence():
    (advice,) = recommend(_burning_view(), None, ["event_loop_p95_ms"], {"profile_diff": "diff.json"})
    assert advice["rule"] == "sync-frame-on-loop" and advice["evidence"] == ["diff.json: grown[0]"]
    assert advice["advice"].startswith("`burn` in `quote()` holds 50% of canary self time (stable 0%")
    assert "executor" in advice["advice"]


def test_a_hot_frame_without_loop_lag_is_pointed_at_as_changed():
    (advice,) = recommend(_burning_view(), None, ["api_p95_ms"])
    assert advice["rule"] == "hot-frame" and "look at what changed" in advice["advice"]


def test_gen2_pauses_that_grew_and_dominate_are_advised():
    gc = {"stable": {"0": {"seconds": 0.1, "count": 100}, "2": {"seconds": 0.01, "count": 5}},
          "canary": {"0": {"seconds": 0.1, "count": 100}, "2": {"seconds": 0.4, "count": 10}}}
    rules = [r["rule"] for r in recommend({"grown": []}, gc, ["gc_pause_avg_ms"], {"gc_pauses": "gc.json"})]
    assert rules == ["gen2-pauses-grew", "gen2-dominates"]


def test_gen2_dominating_is_advised_only_when_the_decision_stood_on_gc():
    gc = {"stable": {"0": {"seconds": 0.01, "count": 100}, "2": {"seconds": 0.02, "count": 5}},
          "canary": {"0": {"seconds": 0.01, "count": 100}, "2": {"seconds": 0.02, "count": 5}}}
    assert recommend({"grown": []}, gc, ["api_p95_ms"]) == []
    assert [r["rule"] for r in recommend({"grown": []}, gc, ["gc_pause_avg_ms"])] == ["gen2-dominates"]


def test_a_gc_mean_of_fewer_than_the_minimum_pauses_is_not_compared():
    # As seen on a healthy canary on a busy machine: one stretched full collection.
    one_long = {"stable": {"2": {"seconds": 0.0226, "count": 2}}, "canary": {"2": {"seconds": 0.0638, "count": 1}}}
    assert recommend({"grown": []}, one_long, ["gc_pause_avg_ms"]) == []
    enough = {track: {"2": {"seconds": g["2"]["seconds"] * GC_MIN_PAUSES, "count": GC_MIN_PAUSES}}
              for track, g in {"stable": {"2": {"seconds": 0.0113}}, "canary": {"2": {"seconds": 0.0638}}}.items()}
    assert [r["rule"] for r in recommend({"grown": []}, enough, [])] == ["gen2-pauses-grew"]
    # A healthy stable collects generation 2 rarely: its two pauses are a baseline, the canary's 30 a finding.
    rare_stable = {"stable": {"2": {"seconds": 0.02, "count": 2}}, "canary": {"2": {"seconds": 1.8, "count": 30}}}
    assert [r["rule"] for r in recommend({"grown": []}, rare_stable, [])] == ["gen2-pauses-grew"]


def test_nothing_above_noise_gives_no_advice():
    same = {"stable": {"2": {"seconds": 0.01, "count": 5}}, "canary": {"2": {"seconds": 0.012, "count": 5}}}
    healthy = diff_profiles(profile("canary", {(LOOP, HANDLE, QUOTE): 100}),
                            profile("stable", {(LOOP, HANDLE, QUOTE): 100}))
    assert recommend(healthy, {**same, "canary": {"0": {"seconds": 1, "count": 100}, **same["canary"]}},
                     ["event_loop_p95_ms"]) == []


def test_the_notes_name_the_top_grown_frames_then_the_advice_or_say_why_none_is_named():
    view = diff_profiles(profile("canary", {(LOOP, HANDLE, QUOTE, BURN): 80, (LOOP, HANDLE, QUOTE): 20}),
                         profile("stable", {(LOOP, HANDLE, QUOTE): 100}))
    advice = recommend(view, None, ["event_loop_p95_ms"], {"profile_diff": "d.json"})
    notes = profile_notes({"not_taken": {}, "diff": view, "recommendations": advice})
    assert notes[0] == "grown in the canary: `burn` in `quote()` 80% of canary self time (stable 0%, +80 points)"
    assert notes[1].startswith("advice: `burn` in `quote()` holds 80%")
    assert notes[1].endswith("[evidence: d.json: grown[0]]")
    few = diff_profiles(profile("canary", {(LOOP, QUOTE): 3}), profile("stable", {(LOOP, QUOTE): 100}))
    assert profile_notes({"not_taken": {"stable": "stable: ptrace refused"}, "diff": few}) == [
        "profile not taken: stable: ptrace refused",
        "canary vs stable: too few samples to compare (canary under 20 samples)"]
    assert profile_notes(None) == [] and profile_notes({"error": "disk full"}) == ["profiles not written: disk full"]


def test_folded_stacks_and_the_pyroscope_name():
    p = profile("canary", {(LOOP, QUOTE): 2, (LOOP, QUOTE, BURN): 1})
    loop_quote = "run_forever (asyncio/base_events.py);quote (app/service.py)"
    assert folded(p).splitlines() == [f"{loop_quote} 2", f"{loop_quote};burn (app/service.py) 1"]
    assert pyroscope_name("golive", {"track": "canary", "service": "spark", "stage": "5", "version": "1.4.0"}) \
        == "golive.cpu{service=spark,stage=5,track=canary,version=1.4.0}"
    assert pyroscope_name("a", {"t": "x}y,z"}) == "a.cpu{t=x_y_z}"


def test_gc_pauses_between_two_readings_count_from_zero_after_a_restart():
    before = {"0": {"seconds": 1.0, "count": 100}, "2": {"seconds": 0.5, "count": 10}}
    after = {"0": {"seconds": 1.5, "count": 150}, "2": {"seconds": 0.1, "count": 2}}
    assert gc_pause_delta(before, after) == {"0": {"seconds": 0.5, "count": 50}, "2": {"seconds": 0.1, "count": 2}}
    assert gc_pause_delta(None, after) is None
