"""`golive card` (the operator card, its QR code and quick start) and `golive automations` (the
Prefect automations a team wants on golive's events)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from golive import layout

__all__ = ["NOTIFY_AUTOMATION", "add_parsers", "notify_automation", "write_card"]

NOTIFY_AUTOMATION = "golive: tell the war room about rollbacks and pauses"


class _Exit(Exception):
    """A bad argument: one line on stderr, exit 2."""


def _settings(args: argparse.Namespace):
    from golive.settings import SettingsError, load_settings

    try:
        return load_settings(args.config, release=args.release, process={"evidence_root": args.evidence_root})
    except SettingsError as exc:
        raise _Exit(str(exc)) from None


def write_card(settings, out: Path, link: str | None = None, config: str = "golive.yaml") -> dict[str, Path]:
    """Write the card (markdown and A5 HTML), its QR code (PNG, SVG) and the quick start into `out`,
    each file whole and in place of a link found under its name (never through it)."""
    from golive import card
    from golive.validation import write_whole

    quick_start = out / layout.QUICK_START
    if link is None and settings.process.github is not None:
        link = f"https://github.com/{settings.process.github.repository}/blob/HEAD/{layout.QUICK_START}"
    link = link or quick_start.resolve().as_uri()
    png, svg = card.qr_code(link)  # a link too long for one is refused before anything is written
    out.mkdir(parents=True, exist_ok=True)
    write_whole(quick_start, card.quick_start(settings, config))
    markdown = card.card_markdown(settings, layout.OPERATOR_CARD_QR_PNG, config)
    files = {layout.OPERATOR_CARD: markdown, layout.OPERATOR_CARD_HTML: card.card_html(markdown, svg, settings.release),
             layout.OPERATOR_CARD_QR_SVG: svg}
    written = {layout.QUICK_START: quick_start}
    for name, text in files.items():
        write_whole(out / name, text)
        written[name] = out / name
    write_whole(out / layout.OPERATOR_CARD_QR_PNG, png)
    written[layout.OPERATOR_CARD_QR_PNG] = out / layout.OPERATOR_CARD_QR_PNG
    return {"link": link, **written}


def _card_folder(args: argparse.Namespace, release: str) -> Path:
    """--out, checked before anything is written (its parent must exist); by default
    operator-card/v<release>, made with its parents."""
    from golive.validation import check_output_path

    if args.out is None:
        return Path(f"operator-card/v{release}")
    try:
        return check_output_path(args.out, folder=True)
    except ValueError as exc:
        raise _Exit(f"--out {exc}") from None


def cmd_card(args: argparse.Namespace) -> int:
    from golive.validation import escape_line

    settings = _settings(args)
    out = _card_folder(args, settings.release)
    try:
        written = write_card(settings, out, args.link, args.config or "golive.yaml")
    except OSError as exc:
        raise _Exit(f"--out {escape_line(out)}: {exc.strerror}") from None
    except ValueError as exc:  # a link too long for a QR code: the one given, or the quick start's path
        raise _Exit(f"--link: {exc}" if args.link
                    else f"the quick start's link: {exc}; give a shorter --link") from None
    print(f"operator card v{settings.release}: QR code links to {escape_line(written.pop('link'))}")
    for path in written.values():
        print(f"  {escape_line(path)}")
    return 0


def notify_automation(block_document_id: str):
    """Send the war-room message of every golive rollback and pause through a notification block."""
    from prefect.events.actions import SendNotification
    from prefect.events.schemas.automations import AutomationCore, EventTrigger, Posture
    from prefect.events.schemas.events import ResourceSpecification

    from tasks.notify import ALERTING_EVENTS

    return AutomationCore(
        name=NOTIFY_AUTOMATION,
        description="golive's Rollback and Paused events, each sent to the team's channel as it happens.",
        trigger=EventTrigger(
            match=ResourceSpecification({"prefect.resource.id": "golive.release.*"}),
            expect=set(ALERTING_EVENTS),
            posture=Posture.Reactive,
            threshold=1,
        ),
        actions=[SendNotification(
            block_document_id=block_document_id,
            subject="golive {{ event.resource.name }}: {{ event.event }}",
            body="{{ event.payload.message }}",
        )],
    )


def cmd_automations(args: argparse.Namespace) -> int:
    from cli.prefect_env import configure_prefect

    configure_prefect()
    from prefect import get_client
    from prefect.blocks.core import Block

    if args.action == "show":
        print(notify_automation("00000000-0000-0000-0000-000000000000").model_dump_json(indent=2))
        return 0
    try:
        block_id = Block.load(args.notify_block)._block_document_id
    except (ValueError, KeyError) as exc:
        raise _Exit(f"--notify-block {args.notify_block}: {exc}") from None
    wanted = notify_automation(str(block_id))
    with get_client(sync_client=True) as client:
        found = client.read_automations_by_name(NOTIFY_AUTOMATION)
        if found:
            client.update_automation(found[0].id, wanted)
            automation_id = found[0].id
        else:
            automation_id = client.create_automation(wanted)
    print(json.dumps({"automation": NOTIFY_AUTOMATION, "id": str(automation_id), "block": args.notify_block}))
    return 0


def _guarded(command):
    def run(args: argparse.Namespace) -> int:
        import sys

        try:
            return command(args)
        except _Exit as exc:
            print(f"golive: {exc}", file=sys.stderr)
            return 2
    return run


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("card", help="the operator card (A5), its QR code and the quick start of this target")
    p.add_argument("--release", required=True)
    p.add_argument("--config", help="golive settings (YAML); default: the built-in settings")
    p.add_argument("--evidence-root", help="default: the settings' process.evidence_root")
    p.add_argument("--out", help="the folder to write into (default: operator-card/v<RELEASE>)")
    p.add_argument("--link", help="where the QR code points (default: the quick start on GitHub when the "
                                  "settings name a repository, else the file written)")
    p.set_defaults(func=_guarded(cmd_card))
    p = sub.add_parser("automations", help="Prefect automations on golive's events: tell the channel on a "
                                           "rollback or a pause")
    p.add_argument("action", choices=("apply", "show"), help="apply: create or update it on the server; "
                                                             "show: print it as JSON")
    p.add_argument("--notify-block", default="custom-webhook/war-room",
                   help="the notification block, as TYPE/NAME (slack-webhook/…, ms-teams-webhook/…, "
                        "custom-webhook/…)")
    p.set_defaults(func=_guarded(cmd_automations))
