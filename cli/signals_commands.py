"""`golive signals`: the signal list in force, the packs, and whether Prometheus answers every signal.

`golive signals check [--config FILE] [--pack NAME] [--prometheus URL]` asks every query of the
list for both tracks before any traffic moves and prints one line per signal; exit 0 when every
signal has data for both tracks, 2 when one has not (each named, with why: a metric Prometheus
has never seen, or a query that answers nothing on a track), 1 when Prometheus does not answer.
`golive signals list` prints the list in force, `golive signals packs` the ready lists.
"""

from __future__ import annotations

import argparse
import math
import sys

__all__ = ["add_parsers"]

MAX_WINDOW_SECONDS = 86400.0


class _Refused(Exception):
    """A bad argument or setting: one line on stderr, exit 2."""


def _settings(args: argparse.Namespace):
    from golive.settings import SettingsError, load_settings

    policy = {"signal_pack": args.pack} if getattr(args, "pack", None) else None
    prometheus = {"url": args.prometheus} if getattr(args, "prometheus", None) else None
    try:
        # The list does not depend on the release; a file without one still describes a target.
        return load_settings(args.config or {}, release=args.release, policy=policy, prometheus=prometheus)
    except SettingsError as exc:
        raise _Refused(str(exc)) from None


def cmd_check(args: argparse.Namespace) -> int:
    from prometheus_api_client import PrometheusApiClientException
    from requests import RequestException

    from golive.signal_check import check_signals
    from tasks.prometheus import ask_signal_queries

    if not (math.isfinite(args.window) and 0 < args.window <= MAX_WINDOW_SECONDS):
        raise _Refused(f"--window: expected seconds in (0, {MAX_WINDOW_SECONDS:g}], got {args.window:g}")
    settings = _settings(args)
    catalogue = settings.policy.catalogue()
    try:
        answers, known = ask_signal_queries(settings.prometheus, catalogue, args.window)
    except (PrometheusApiClientException, RequestException) as exc:
        why = " ".join(str(exc).split())
        print(f"golive: Prometheus at {settings.prometheus.url} does not answer: "
              f"{why if len(why) <= 200 else why[:199] + '…'}", file=sys.stderr)
        return 1
    results = check_signals(catalogue, answers, known)
    for result in results:
        print(result.line())
    failed = [r.name for r in results if not r.ok]
    if failed:
        print(f"golive: {len(failed)} of {len(results)} signals cannot be judged: {', '.join(failed)}",
              file=sys.stderr)
        return 2
    print(f"{len(results)}/{len(results)} signals answer for both tracks over {args.window:g} s")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    settings = _settings(args)
    for sig in settings.policy.catalogue():
        extras = [f"role {sig.role}"] if sig.role else []
        extras += ["request-derived"] if sig.request_derived else []
        extras += ["a mirror shows it"] if sig.mirror_visible else []
        extras += ["the shadow stage's browser shows it"] if sig.browser_visible else []
        print(f"{sig.name}: {sig.kind}, {sig.rule_text()}" + (f" ({', '.join(extras)})" if extras else ""))
    return 0


def cmd_packs(args: argparse.Namespace) -> int:
    from golive.signal_packs import PACKS

    for pack in PACKS.values():
        print(f"{pack.name}: {pack.description}; signals {', '.join(s.name for s in pack.signals)}")
    return 0


def _run(command):
    def run(args: argparse.Namespace) -> int:
        try:
            return command(args)
        except _Refused as exc:
            print(f"golive: {exc}", file=sys.stderr)
            return 2
    return run


def add_parsers(sub: argparse._SubParsersAction) -> None:
    signals = sub.add_parser("signals", help="the signal list, its packs, and whether Prometheus answers it")
    actions = signals.add_subparsers(dest="action", required=True)
    p = actions.add_parser("check", help="ask every query of the list for both tracks: exit 2 naming a signal "
                                         "without data")
    p.add_argument("--config", help="golive.yaml (default: golive's defaults, the sandbox on its default ports)")
    p.add_argument("--pack", help="start from this pack instead of the settings' policy.signal_pack")
    p.add_argument("--prometheus", help="Prometheus' URL instead of the settings' prometheus.url")
    p.add_argument("--window", type=float, default=30.0, help="seconds each query looks back over (default 30)")
    p.add_argument("--release", default="0.0.0", help=argparse.SUPPRESS)
    p.set_defaults(func=_run(cmd_check))
    p = actions.add_parser("list", help="the signals a go-live of these settings is judged on")
    p.add_argument("--config", help="golive.yaml (default: golive's defaults, the sandbox on its default ports)")
    p.add_argument("--pack", help="start from this pack instead of the settings' policy.signal_pack")
    p.add_argument("--release", default="0.0.0", help=argparse.SUPPRESS)
    p.set_defaults(func=_run(cmd_list))
    p = actions.add_parser("packs", help="the ready signal lists")
    p.set_defaults(func=_run(cmd_packs))
