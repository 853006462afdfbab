"""`golive dashboard` and `golive rules`: the operator's Grafana dashboard and Prometheus rules,
generated from the signal catalogue and the settings in force; `golive budget`: the error
budget's freeze (status, a person's override for one release, the policy run once)."""

from __future__ import annotations

import argparse
import math
import re
import time
from pathlib import Path

__all__ = ["add_parsers", "draw_png", "render_png", "substitute"]

# What Grafana puts in for the dashboard's variables when a panel is drawn without it.
ALL_TRACKS = "stable|canary"
# The longest a recorded signal's window, an alert's `for` and the history drawn may be: past
# these, a number is a typo (Prometheus would take a window of 10^308 seconds and answer nothing).
MAX_WINDOW_SECONDS = 86400.0
MAX_MINUTES = 7 * 24 * 60.0


class _Refused(Exception):
    """A bad argument, setting or output path: one line on stderr, exit 2, nothing written."""


def _settings(args: argparse.Namespace):
    """The settings in force, --service in place of target.service (and checked as it is)."""
    from golive.settings import SettingsError, load_settings

    try:
        # Nothing generated here depends on the release; a file without one still describes a target.
        return load_settings(args.config or {}, release=args.release, target={"service": args.service})
    except SettingsError as exc:
        message = str(exc)
        if args.service is not None and message.startswith("target.service: "):
            message = "--service: " + message.removeprefix("target.service: ")
        raise _Refused(message) from None


def _check_numbers(args: argparse.Namespace) -> None:
    """--window, --alert-for (and --minutes): finite, above zero, within their bounds."""
    bounds = {"--window": (args.window, MAX_WINDOW_SECONDS, "seconds"),
              "--alert-for": (args.alert_for, MAX_WINDOW_SECONDS, "seconds")}
    if getattr(args, "minutes", None) is not None:
        bounds["--minutes"] = (args.minutes, MAX_MINUTES, "minutes")
    for option, (value, most, unit) in bounds.items():
        if not (math.isfinite(value) and 0 < value <= most):
            raise _Refused(f"{option}: expected {unit} in (0, {most:g}], got {value:g}")


def _options(args: argparse.Namespace, settings):
    from golive.rules import options_for

    try:
        return options_for(settings, window_seconds=args.window, alert_for_seconds=args.alert_for)
    except ValueError as exc:
        raise _Refused(str(exc)) from None


def _output(option: str, path: str | None) -> Path | None:
    """The file an option names, checked before anything is generated or written."""
    from golive.validation import check_output_path

    if path is None:
        return None
    try:
        return check_output_path(path)
    except ValueError as exc:
        raise _Refused(f"{option} {exc}") from None


def _write(target: Path, data: str | bytes, option: str = "--out") -> None:
    """Write whole or not at all, replacing (never following) a link at `target`."""
    from golive.validation import write_whole

    try:
        write_whole(target, data)
    except OSError as exc:
        raise _Refused(f"{option} {_shown(target)}: {exc.strerror}") from None


def cmd_rules(args: argparse.Namespace) -> int:
    from golive.rules import build_rules, render_rules

    out = _output("--out", args.out)
    _check_numbers(args)
    settings = _settings(args)
    options = _options(args, settings)
    _write(out, render_rules(build_rules(settings.policy.catalogue(), options)))
    print(f"rules for {_shown(options.service)}: {_shown(out)} (check with: promtool check rules {_shown(out)})")
    return 0


def cmd_dashboard(args: argparse.Namespace) -> int:
    from golive.dashboard import dashboard_for, dashboard_json

    out, png = _output("--out", args.out), _output("--png", args.png)
    _check_numbers(args)
    settings = _settings(args)
    options = _options(args, settings)
    prometheus = _prometheus(args.prometheus or settings.prometheus.url)
    board = dashboard_for(settings, options)
    # The panels are drawn before anything is written: an answer Prometheus gets wrong leaves no file.
    drawn = _drawn(board.build(), prometheus, options.service, args.minutes) if png else None
    _write(out, dashboard_json(board))
    print(f"dashboard for {_shown(options.service)}: {_shown(out)} (it reads the series of `golive rules`)")
    if png:
        _write(png, drawn, "--png")
        print(f"its panels drawn from {prometheus}: {_shown(png)}")
    return 0


def _prometheus(url: str) -> str:
    """--prometheus (or the settings' prometheus.url): http(s), and no credentials to repeat in an error."""
    from golive.validation import check_service_url

    try:
        return check_service_url(url)
    except ValueError as exc:
        raise _Refused(f"--prometheus: {exc}") from None


def _drawn(model, prometheus: str, service: str, minutes: float) -> bytes:
    """The panels as PNG bytes; whatever Prometheus answers that is not a series is one line."""
    import httpx

    try:
        return draw_png(model, prometheus, service, minutes=minutes)
    except (httpx.HTTPError, OSError, ValueError, LookupError, TypeError, RecursionError) as exc:
        raise _Refused(f"--png: the panels could not be drawn from {prometheus}: {_error(exc)}") from None


def _shown(text: object) -> str:
    from golive.validation import escape_line

    return escape_line(text)


def _error(exc: BaseException) -> str:
    from golive.validation import error_line

    return error_line(exc)


def substitute(expr: str, service: str, tracks: str = ALL_TRACKS) -> str:
    """A panel's PromQL with the dashboard's variables filled in, as Grafana sends it."""
    return expr.replace("$service", service).replace("$track", tracks)


def _result(response) -> list[dict]:
    """The series of a Prometheus answer (`data.result`), each an object with its labels;
    ValueError when the answer is not one."""
    response.raise_for_status()
    result = response.json()["data"]["result"]
    if not isinstance(result, list) or not all(
            isinstance(r, dict) and isinstance(r.get("metric"), dict) for r in result):
        raise ValueError("the answer is not a list of series with their labels")
    return result


def _range(client, expr: str, start: float, end: float, step: float) -> list[tuple[dict, list[float], list[float]]]:
    response = client.get("/api/v1/query_range", params={"query": expr, "start": start, "end": end, "step": step})
    return [(r["metric"], [float(t) for t, _ in r["values"]], [float(v) for _, v in r["values"]])
            for r in _result(response)]


def _steps(panel) -> list:
    thresholds = panel.field_config.defaults.thresholds if panel.field_config and panel.field_config.defaults else None
    return [s for s in (thresholds.steps if thresholds else []) if s.value is not None]


def render_png(model, prometheus_url: str, out: Path, service: str, minutes: float = 10.0) -> None:
    """Draw the dashboard's panels from Prometheus into the PNG file `out` (see `draw_png`)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    _write(out, draw_png(model, prometheus_url, service, minutes), "--png")


def draw_png(model, prometheus_url: str, service: str, minutes: float = 10.0) -> bytes:
    """The dashboard's panels drawn from Prometheus with their own queries (Grafana is not needed),
    as PNG bytes: time series with their threshold lines, gauges as their last value against their steps."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [p for p in model.panels if getattr(p, "targets", None)]
    columns = 4
    rows = -(-len(panels) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(4.2 * columns, 2.9 * rows), squeeze=False)
    try:
        _draw_panels(axes, panels, prometheus_url, service, minutes)
        figure.suptitle(f"{model.title}: panels drawn from Prometheus with the dashboard's queries", fontsize=11)
        figure.tight_layout()
        image = io.BytesIO()
        figure.savefig(image, format="png", dpi=80)
        return image.getvalue()
    finally:
        plt.close(figure)


def _draw_panels(axes, panels: list, prometheus_url: str, service: str, minutes: float) -> None:
    import httpx

    end = time.time()
    start = end - minutes * 60
    with httpx.Client(base_url=prometheus_url, timeout=30) as client:
        for ax, panel in zip(axes.flat, panels):
            ax.set_title(panel.title, fontsize=9)
            ax.tick_params(labelsize=7)
            if panel.type_val == "gauge":
                _draw_gauge(ax, panel, client, service, end)
                continue
            if panel.type_val == "stat":
                _draw_stat(ax, panel, client, service, end)
                continue
            for target in panel.targets:
                for labels, times, values in _range(client, substitute(target.expr, service), start, end, 5):
                    legend = re.sub(r"\{\{(\w+)\}\}", lambda m: str(labels.get(m.group(1), "")),
                                    target.legend_format or "")
                    ax.plot([(t - end) / 60 for t in times], values, label=legend, linewidth=1.2)
            for step in _steps(panel):
                ax.axhline(step.value, color=step.color if step.color != "orange" else "darkorange",
                           linestyle="--", linewidth=1)
            ax.set_xlabel("minutes", fontsize=7)
            if ax.get_legend_handles_labels()[0]:
                ax.legend(fontsize=7, loc="upper left")
            else:
                ax.text(0.5, 0.5, "no data", transform=ax.transAxes, ha="center", va="center", fontsize=8)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")


def _draw_stat(ax, panel, client, service: str, at: float) -> None:
    """A stat panel's values now, one line a series (the budget's time left is in seconds)."""
    from golive.error_budget import spoken_duration

    response = client.get("/api/v1/query", params={"query": substitute(panel.targets[0].expr, service), "time": at})
    lines = []
    for row in _result(response):
        legend = panel.targets[0].legend_format or ""
        for key, value in row["metric"].items():
            legend = legend.replace("{{" + key + "}}", value)
        value = float(row["value"][1])
        shown = spoken_duration(value) if panel.field_config.defaults.unit == "dtdurations" else f"{value:.3g}"
        lines.append(f"{legend}: {shown}")
    ax.axis("off")
    ax.text(0.5, 0.5, "\n".join(lines) or panel.field_config.defaults.no_value or "no data", transform=ax.transAxes,
            ha="center", va="center", fontsize=10)


def _draw_gauge(ax, panel, client, service: str, at: float) -> None:
    response = client.get("/api/v1/query", params={"query": substitute(panel.targets[0].expr, service), "time": at})
    result = _result(response)
    value = float(result[0]["value"][1]) if result else float("nan")
    steps = _steps(panel)
    colour = "green"
    for step in steps:
        if value >= step.value:
            colour = step.color
    top = panel.field_config.defaults.max_val or max([value, *(s.value for s in steps)]) * 1.2
    ax.barh([0], [value], color=colour if colour != "orange" else "darkorange", height=0.5)
    for step in steps:
        ax.axvline(step.value, color=step.color, linestyle="--", linewidth=1)
    ax.set_xlim(0, top)
    ax.set_yticks([])
    ax.text(0.5, 0.8, f"{value:.3g}", transform=ax.transAxes, ha="center", fontsize=14)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", required=True, help="the file to write")
    p.add_argument("--config", help="golive settings (YAML): thresholds and queries; default: the catalogue's")
    p.add_argument("--release", default="0.0.0", help=argparse.SUPPRESS)
    p.add_argument("--service",
                   help="the service label the rules put on their series (default: the settings' target.service)")
    p.add_argument("--window", type=float, default=60.0, help="seconds each recorded signal measures over")
    p.add_argument("--alert-for", type=float, default=60.0,
                   help="seconds a signal far over its threshold must last before its critical alert fires")


def _guarded(command):
    def run(args: argparse.Namespace) -> int:
        import sys

        try:
            return command(args)
        except _Refused as exc:
            print(f"golive {args.command}: {exc}", file=sys.stderr)
            return 2
    return run


def _budget_settings(args: argparse.Namespace):
    from golive.settings import SettingsError, load_settings

    overrides = {"process": {"evidence_root": args.evidence_root}} if args.evidence_root else {}
    try:
        return load_settings(args.config or {}, release=getattr(args, "release", None) or "0.0.0-error-budget",
                             **overrides)
    except SettingsError as exc:
        raise _Refused(str(exc)) from None


def _budget_folder(settings) -> Path:
    from golive.error_budget import budget_folder

    try:
        return budget_folder(settings.process.evidence_root, settings.process.budget)
    except ValueError as exc:
        raise _Refused(str(exc)) from None


def cmd_budget_status(args: argparse.Namespace) -> int:
    from golive.error_budget import read_freeze, spoken_duration

    settings = _budget_settings(args)
    folder = _budget_folder(settings)
    try:
        state = read_freeze(folder)
    except ValueError as exc:
        raise _Refused(str(exc)) from None
    if state is None:
        print(f"not frozen: no freeze ever recorded in {_shown(folder)}")
        return 0
    left = "unknown" if state.remaining is None else f"{100 * state.remaining:.1f} %"
    soonest = min((s for s in state.exhaustion_seconds.values() if s is not None), default=None)
    since = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(state.since)) if state.since else "–"
    print(f"{'FROZEN' if state.frozen else 'not frozen'} since {since}: {_shown(state.reason) or '–'}")
    print(f"budget left {left} (line {100 * state.line:g} %); gone in {spoken_duration(soonest)}")
    return 3 if state.frozen else 0


def cmd_budget_override(args: argparse.Namespace) -> int:
    from golive import layout
    from golive.error_budget import record_override

    settings = _budget_settings(args)
    folder = _budget_folder(settings)
    try:
        override = record_override(folder, settings.release, args.who, args.why, time.time())
    except ValueError as exc:
        raise _Refused(f"--{exc}" if str(exc).split(":")[0] in ("who", "why", "release") else str(exc)) from None
    except OSError as exc:
        raise _Refused(f"{_shown(folder)}: {exc.strerror}") from None
    print(f"override recorded for v{override.release} by {_shown(override.who)}: "
          f"{_shown(folder / layout.budget_override(override.release))}")
    return 0


def cmd_budget_enforce(args: argparse.Namespace) -> int:
    from flows.error_budget_freeze import error_budget_freeze

    settings = _budget_settings(args)
    state = error_budget_freeze(settings=settings.model_dump(mode="json", exclude={"release"}),
                                triggered_by="command", return_state=True)
    print(f"{state.name}: {state.message}")
    return 0 if state.is_completed() else 1


def _add_budget(sub: argparse._SubParsersAction) -> None:
    budget = sub.add_parser("budget", help="the error budget's freeze").add_subparsers(dest="action", required=True)
    for name, func, text in (("status", cmd_budget_status, "is the budget frozen (exit 3 when it is)"),
                             ("override", cmd_budget_override, "record a person's go-live on a frozen budget"),
                             ("enforce", cmd_budget_enforce, "read the budget now and freeze, keep or lift")):
        p = budget.add_parser(name, help=text)
        p.add_argument("--config", help="golive settings (YAML); default: the built-in ones")
        p.add_argument("--evidence-root", help="default: the settings' process.evidence_root")
        if name == "override":
            p.add_argument("--release", required=True, help="the release whose go-live may start frozen")
            p.add_argument("--who", required=True, help="who decided (recorded)")
            p.add_argument("--why", required=True, help="why (recorded)")
        p.set_defaults(func=_guarded(func), command=f"budget {name}")


def add_parsers(sub: argparse._SubParsersAction) -> None:
    from cli import alert_webhook

    _add_budget(sub)
    alert_webhook.add_parsers(sub)
    p = sub.add_parser("rules", help="Prometheus recording and alerting rules from the signal catalogue")
    _common(p)
    p.set_defaults(func=_guarded(cmd_rules))
    p = sub.add_parser("dashboard", help="the Grafana dashboard (JSON) from the signal catalogue")
    _common(p)
    p.add_argument("--png", help="also draw its panels from Prometheus into this PNG (no Grafana needed)")
    p.add_argument("--prometheus", help="the Prometheus to draw from (default: the settings' prometheus.url)")
    p.add_argument("--minutes", type=float, default=10.0, help="how much history to draw")
    p.set_defaults(func=_guarded(cmd_dashboard))
