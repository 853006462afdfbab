"""The operator card and its quick start, from the settings in force; the release notes' summary.

The card is what the runbook's operator carries: the signals' thresholds, the stages and dwell, the
rollback command for this target, who is in command and who is called next, the war-room
channel and the evidence folder, with a QR code (top left) linking to the quick start, the
minute-by-minute commands of this target. Pure: text and bytes out, the caller writes them.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Mapping
from shlex import quote

from golive import layout
from golive.settings import GoLiveSettings
from golive.stage import stage_name
from golive.validation import escape_line

__all__ = [
    "Card", "card_html", "card_markdown", "deployment_summary", "fill_release_notes", "qr_code", "quick_start",
    "rollback_commands",
]

_NGINX_WEIGHT = "nginx.ingress.kubernetes.io/canary-weight"
_GENERATION, _FENCE_HOLDER = "golive.dev/generation", "golive.dev/fence-holder"
_VERSION_AND_GENERATION = "{.metadata.resourceVersion} {.metadata.annotations.golive\\.dev/generation}"
_BY_HAND = {"kind": "operator", "name": "rollback by hand"}


class Card(dict):
    """The card's files by name: the markdown, the HTML print layout, the QR code and the quick start."""


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:g} min" if seconds >= 60 else f"{seconds:g} s"


def rollback_commands(settings: GoLiveSettings, config: str = "golive.yaml") -> list[str]:
    """How to send every user back to stable on this target: golive, Prefect, and by hand. By hand
    too, the weight 0 goes with a generation newer than the target's, so a go-live that is paused
    and wakes later is refused (`golive.fencing`)."""
    release, config = settings.release, quote(config)
    commands = [f'golive rollback --release {release} --reason "WHY" --stage N --config {config}',
                f'prefect deployment run rollback/default --param release={release} --param reason="WHY" '
                f"--param stage=N"]
    router = settings.target.router
    by_hand = json.dumps(_BY_HAND, separators=(",", ":"))
    if router.kind == "ingress-nginx":
        cluster = router.kubernetes
        namespace, ingress = quote(cluster.namespace), quote(cluster.canary_ingress_name)
        # The edit carries the resourceVersion read with the generation: a writer that came
        # between (a go-live taking G + 1 itself) makes it a conflict, not a shared generation.
        commands += [
            "# by hand: weight 0 and the generation one more than the current, in one edit "
            "(a conflict: run it again)",
            f"R=$(kubectl -n {namespace} get ingress {ingress} -o jsonpath={quote(_VERSION_AND_GENERATION)}) && "
            'read -r V G <<<"$R" && \\',
            f'  kubectl -n {namespace} annotate ingress {ingress} --overwrite --resource-version="$V" '
            f"{_NGINX_WEIGHT}=0 {_GENERATION}=$((G + 1)) {quote(f'{_FENCE_HOLDER}={by_hand}')}",
        ]
    elif router.kind == "gateway-api":
        cluster = router.kubernetes
        commands += [
            f"# by hand, in one save: weight 0 on {quote(cluster.canary_service)} and 100 on "
            f"{quote(cluster.stable_service)}, {_GENERATION} one more than the current, {_FENCE_HOLDER} {by_hand}",
            f"kubectl -n {quote(cluster.namespace)} edit httproute {quote(cluster.http_route)}",
        ]
    else:
        url, json_header = router.control_url.rstrip("/"), quote("Content-Type: application/json")
        commands += [
            "# by hand: a generation newer than the router's, then weight 0 with it",
            f"G=$(curl -fsS -X POST {quote(url + '/fence')} -H {json_header} "
            f"-d {quote(json.dumps({'holder': _BY_HAND}))} | jq -r .generation) && \\",
            f"  curl -fsS -X PUT {quote(url + '/weight')} -H {json_header} "
            '-d "{\\"weight\\": 0, \\"generation\\": $G}"',
        ]
    return commands


# What markdown reads as a link, an image, code, emphasis, an entity, raw HTML or a table's next
# cell: escaped in a name.
_MARKUP = "\\`[]|*_~&"
_TAG_START = re.compile(r"<(?=[A-Za-z/!?])")


def _md(text: object) -> str:
    """A name from the settings as markdown that shows it as written: on one line (escape_line),
    and every character markdown would read as a link, code, emphasis, an entity, HTML or a cell
    boundary escaped."""
    escaped = "".join(f"\\{c}" if c in _MARKUP else c for c in escape_line(text))
    return _TAG_START.sub(r"\\<", escaped)


def _code(text: object) -> str:
    """A name as a code span; as escaped text when it holds a backtick, which would end the span."""
    line = escape_line(text)
    return f"`{line}`" if "`" not in line else _md(text)


def _thresholds(settings: GoLiveSettings) -> list[str]:
    rows = ["| Signal | Column | Rule |", "|---|---|---|"]
    rows += [f"| {_md(s.title)} | {_code(s.column)} | {_md(s.rule_text())} |" for s in settings.policy.catalogue()]
    return rows


def card_markdown(settings: GoLiveSettings, qr_image: str = layout.OPERATOR_CARD_QR_PNG,
                  config: str = "golive.yaml") -> str:
    """OPERATOR_CARD.md: the QR code to the quick start first (top left), then what to watch,
    when to roll back and whom to call."""
    policy, people = settings.policy, settings.process.operator
    escalation = " → ".join(_md(name) for name in people.escalation) or "(none set: process.operator.escalation)"
    stages = " → ".join(stage_name(p) for p in settings.planned_stages)
    longest_wait = policy.stage_plan(policy.stages[0]).max_dwell_seconds
    lines = [
        f'<img src="{qr_image}" alt="QR: {layout.QUICK_START}" width="120" align="left">',
        "",
        f"# Operator card: v{settings.release}",
        "",
        f"Scan for the minute-by-minute commands ([{layout.QUICK_START}]({layout.QUICK_START})).",
        "",
        f"- **Incident commander:** {_md(people.incident_commander)}",
        f"- **Escalation:** {escalation}",
        f"- **War room:** {_md(people.war_room_channel)}" + (f" (notifications: {_code(settings.process.notify_block)})"
                                                            if settings.process.notify_block else ""),
        f"- **Evidence:** {_code(settings.evidence_dir)}",
        f"- **Target:** {_md(settings.target.router.target)}",
        "",
        '<br clear="left">',
        "",
        "## Stages",
        "",
        f"{stages}; each {_minutes(policy.dwell_seconds)} (100 %: {_minutes(policy.final_dwell_seconds)}), "
        f"judged every {_minutes(policy.interval_seconds)}; a Hold re-measures {_minutes(policy.hold_seconds)}, "
        f"up to {_minutes(policy.hold_budget_seconds)} a stage; too little traffic: "
        + (f"judged at the next stage up to {policy.defer_insufficient_up_to_percent} %, past it "
           if policy.defer_insufficient_up_to_percent else "")
        + f"{policy.on_insufficient_traffic} after {_minutes(longest_wait)}.",
        "",
        f"## The {len(policy.catalogue())} thresholds",
        "",
        *_thresholds(settings),
        "",
        "Any sustained breach, a critical regression or an unfit rollout: **Rollback**, at once.",
        "",
        "## Roll back",
        "",
        "```",
        *rollback_commands(settings, config),
        "```",
        "",
        f"Then verify weight 0 and tell {_md(people.war_room_channel)}.",
        "",
    ]
    return "\n".join(lines)


def quick_start(settings: GoLiveSettings, config: str = "golive.yaml") -> str:
    """QUICK_START_DEPLOYMENT.md: the commands of this target, minute by minute."""
    release, people, total = settings.release, settings.process.operator, 0.0
    config, evidence = quote(config), quote(str(settings.evidence_dir))
    timeline = []
    for percent in settings.planned_stages:
        timeline.append(f"| T+{total / 60:.0f} min | {stage_name(percent)} | watch the war room; Hold re-measures, "
                        f"Rollback is automatic |")
        total += settings.policy.dwell_for(percent)
    lines = [
        f"# Quick start: deploying v{release}",
        "",
        "| When | What | Command |",
        "|---|---|---|",
        f"| T-30 min | flight check: preflight, blast radius, ritual | "
        f"{_code(f'golive flight-check --release {release} --config {config}')} |",
        f"| T-5 min | announce in {_md(people.war_room_channel)} | IC: {_md(people.incident_commander)} |",
        f"| T+0 | start the go-live | `prefect deployment run go-live/v{release} --watch` |",
        "",
        "| When | Canary | What to do |",
        "|---|---|---|",
        *timeline,
        f"| T+{total / 60:.0f} min | Live | the go-live closes (tag, freeze lifted) and starts the first night; "
        f"if it ends ClosedPartially: {_code(f'golive close --release {release} --config {config}')} |",
        "",
        "If anything looks wrong, roll back first and talk after:",
        "",
        "```",
        *rollback_commands(settings, config),
        "```",
        "",
        f"Evidence: {_code(settings.evidence_dir)}; check it with {_code(f'golive evidence verify {evidence}')}.",
        "",
    ]
    return "\n".join(lines)


def qr_code(link: str) -> tuple[bytes, str]:
    """The QR code of `link` as PNG bytes and SVG text; ValueError in one line when the link is
    too long for one (a QR code holds about 2,300 characters at this error correction)."""
    import io

    import segno

    try:
        code = segno.make(link, error="m", micro=False)
    except segno.DataOverflowError:
        raise ValueError(f"{len(link)} characters are too many for a QR code; give a shorter link") from None
    png, svg = io.BytesIO(), io.BytesIO()
    code.save(png, kind="png", scale=6, border=2)
    code.save(svg, kind="svg", scale=6, border=2, xmldecl=False, svgclass=None, lineclass=None)
    return png.getvalue(), svg.getvalue().decode()


def card_html(markdown_card: str, qr_svg: str, release: str) -> str:
    """The card as an A5 page for print: the QR code top left, the card's text beside and below.
    Every piece of text is HTML-escaped; the only link is the card's own, to the quick start."""
    body = []
    in_code = False
    for line in markdown_card.splitlines():
        if line.startswith("<img") or line.startswith("<br"):
            continue
        if line.startswith("```"):
            body.append("</pre>" if in_code else "<pre>")
            in_code = not in_code
        elif in_code:
            body.append(html.escape(line))
        elif line.startswith("#"):
            level = len(line) - len(line.lstrip("#"))
            body.append(f"<h{level}>{_inline(line.lstrip('# '))}</h{level}>")
        elif line.startswith("|---"):
            continue
        elif line.startswith("|"):
            cells = [c.strip() for c in _cells(line)]
            body.append("<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in cells) + "</tr>")
        elif line.startswith("- "):
            body.append(f"<li>{_inline(line[2:])}</li>")
        elif line.strip():
            body.append(f"<p>{_inline(line)}</p>")
    text = "\n".join(body)
    text = re.sub(r"((?:<tr>.*</tr>\n?)+)", r"<table>\1</table>", text)
    text = re.sub(r"((?:<li>.*</li>\n?)+)", r"<ul>\1</ul>", text)
    return (f"<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>Operator card v{html.escape(release)}"
            "</title><style>@page{size:A5;margin:8mm}body{font-family:system-ui,sans-serif;font-size:9pt;"
            "width:132mm;margin:0}.qr{float:left;width:30mm;height:30mm;margin:0 4mm 2mm 0}.qr svg{width:100%;"
            "height:100%}h1{font-size:13pt;margin:0 0 2mm}h2{font-size:10pt;margin:3mm 0 1mm;clear:left}"
            "table{border-collapse:collapse;width:100%}td{border:1px solid #999;padding:1px 3px}"
            "pre{font-size:7pt;white-space:pre-wrap;background:#f3f3f3;padding:2mm}ul{margin:0;padding-left:4mm}"
            f"</style></head><body><div class=\"qr\">{qr_svg}</div>\n{text}\n</body></html>\n")


def _cells(row: str) -> list[str]:
    """A table row's cells, split at the pipes that are not escaped."""
    cells, cell, escaped = [], [], False
    for char in row.strip().removeprefix("|"):
        if char == "|" and not escaped:
            cells.append("".join(cell))
            cell = []
        else:
            cell.append(char)
        escaped = char == "\\" and not escaped
    if "".join(cell).strip():  # text after the last pipe: a row without its closing pipe
        cells.append("".join(cell))
    return cells


# The card's own link; a link in any other text (a name from the settings) stays text.
_OWN_LINKS = frozenset({layout.QUICK_START})
_KEPT = re.compile("\ue000(\\d+)\ue001")


def _inline(text: str) -> str:
    """One line of the card's markdown as HTML: escaped characters and code spans kept as text,
    `**bold**`, and a link only where it points at the card's own quick start."""
    kept: list[str] = []

    def keep(fragment: str) -> str:
        kept.append(fragment)
        return f"\ue000{len(kept) - 1}\ue001"  # private-use marks: escape_line leaves none in a name

    parts, i = [], 0
    while i < len(text):
        char = text[i]
        if char == "\\" and i + 1 < len(text) and text[i + 1] in _MARKUP + "<":
            parts.append(keep(html.escape(text[i + 1])))
            i += 2
        elif char == "`" and (end := text.find("`", i + 1)) > i:
            parts.append(keep(f"<code>{html.escape(text[i + 1:end])}</code>"))
            i = end + 1
        else:
            parts.append(char)
            i += 1
    line = html.escape("".join(parts))
    line = re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", line)
    line = re.sub(r"\[([^\]]+)\]\(([^)\s]+)\)",
                  lambda m: (f'<a href="{m.group(2)}">{m.group(1)}</a>' if html.unescape(m.group(2)) in _OWN_LINKS
                             else m.group(0)), line)
    return _KEPT.sub(lambda m: kept[int(m.group(1))], line)


_SUMMARY_HEADING = re.compile(r"^## Deployment Summary[ \t]*\n(.*?)(?=^## |\Z)", re.M | re.S)


def deployment_summary(release: str, stages: list[Mapping], elapsed_seconds: float) -> str:
    """The runbook's one-liner: `v1.4.0 canary: 1%→…→100% in 3h12m, holds=0, rollback=0;
    p95=~141ms, 5xx=0.18%, ws_stale_p95=2.1s, risk_block=0.12/min, idemp_conflict=0.21%,
    csp_viol=baseline+3%, event-loop p95=11.8ms, GC avg=4.9ms`."""
    from golive.closing import final_decision

    path = "→".join(stage_name(s["stage"]) for s in stages)
    holds = sum(s.get("holds", 0) for s in stages)
    rolled_back = any(s.get("outcome") == "rollback" for s in stages)
    minutes, _ = divmod(int(round(elapsed_seconds)), 60)
    took = f"{minutes // 60}h{minutes % 60:02d}m"
    head = f"v{release} canary: {path} in {took}, holds={holds}, rollback={int(rolled_back)}"
    final = final_decision(stages)
    if not final:
        return head
    signals = final.get("signals", {})

    def level(label: str, name: str, fmt: str) -> str:
        value = signals.get(name, {}).get("canary")
        return f"{label}=n/a" if value is None else f"{label}={fmt.format(value)}"

    def relative(label: str, name: str) -> str:
        sig = signals.get(name, {})
        if sig.get("canary") is not None and sig.get("baseline"):
            return f"{label}=baseline{(sig['canary'] / sig['baseline'] - 1) * 100:+.0f}%"
        return f"{label}=n/a"

    # The runbook's words for its eight; any other signal of the list by its name, in the list's order.
    runbook = {"api_p95_ms": ("p95", "~{:.0f}ms"), "http_p95_ms": ("p95", "~{:.0f}ms"),
               "http_5xx_pct": ("5xx", "{:.2f}%"),
               "ws_staleness_s": ("ws_stale_p95", "{:.1f}s"), "risk_blocks_per_min": ("risk_block", "{:.2f}/min"),
               "idempotency_conflict_pct": ("idemp_conflict", "{:.2f}%"), "csp_violations_per_min": ("csp_viol", None),
               "event_loop_p95_ms": ("event-loop p95", "{:.1f}ms"), "gc_pause_avg_ms": ("GC avg", "{:.1f}ms")}
    parts = []
    for name, verdict in signals.items():
        label, fmt = runbook.get(name, (name, "{:.4g}"))
        if fmt is None or str(verdict.get("rule", "")).startswith("<= baseline"):
            parts.append(relative(label, name))
        else:
            parts.append(level(label, name, fmt))
    return f"{head}; {', '.join(parts)}"


def fill_release_notes(template: str, summary: str) -> str:
    """The template with its "## Deployment Summary" section's body replaced by `summary`."""
    match = _SUMMARY_HEADING.search(template)
    if match is None:
        return template.rstrip("\n") + f"\n\n## Deployment Summary\n\n{summary}\n"
    return template[:match.start(1)] + f"\n{summary}\n\n" + template[match.end(1):]
