"""`golive alert-webhook`: Alertmanager's webhook receiver that rolls the canary back at once.

A stage looks at the critical alerts once per judging interval (a minute with the runbook's
timings); this receiver does not wait for it. Alertmanager POSTs its notification (configure a
`webhook_configs` receiver for `severity="critical"` with the URL http://HOST:PORT/alertmanager and
the shared token as its `http_config.authorization.credentials_file`, a bearer token);
golive.alert_webhook says which alerts act, and the go-live holding the traffic target is rolled
back by the `rollback` flow with that go-live's fencing generation, like every rollback. One
notification is acted on at a time and the target's fence is read again first, so Alertmanager's
repeats, a second alert, or the stage seeing the same alert find a rollback holding the target
and roll back nothing more. Then the event `golive.critical-alert` is emitted for automations.

A request without that bearer token is refused (401) before its body is read; one without a
whole, non-negative Content-Length too (411, 400): the body is read to that length, never to the
connection's end.
"""

from __future__ import annotations

import argparse
import hmac
import json
import logging
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from golive.alert_webhook import WebhookRefused, acting_alerts, alerts_of_holder, go_live_to_end, rollback_reason
from golive.settings import SettingsError, load_settings
from golive.stage import SHADOW_STAGE
from golive.validation import error_line, escape_line

__all__ = ["AlertReceiver", "add_parsers"]

PATH = "/alertmanager"
MAX_BODY_BYTES = 1 << 20
TOKEN_ENV = "GOLIVE_ALERT_WEBHOOK_TOKEN"
logger = logging.getLogger("golive.alert_webhook")


class TokenMissing(ValueError):
    """No shared token to check Alertmanager's requests against; one line naming where it is looked for."""


def read_token(token_file: str | None) -> str:
    """The shared bearer token: the file's first line when a file is named, else the environment's."""
    if token_file:
        try:
            token = Path(token_file).read_text().strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise TokenMissing(f"--token-file: cannot be read ({type(exc).__name__})") from None
        if not token:
            raise TokenMissing("--token-file: the file is empty")
        return token
    token = os.environ.get(TOKEN_ENV, "").strip()
    if not token:
        raise TokenMissing(f"--token-file: required (or the environment's {TOKEN_ENV}): Alertmanager's bearer token")
    return token


def _body_length(header: str | None) -> tuple[int, str] | int:
    """The Content-Length to read, or (the status, why) that refuses the request."""
    if header is None:
        return 411, "Content-Length required"
    if not (header.strip().isascii() and header.strip().isdigit()):
        return 400, "Content-Length: expected a whole number from 0"
    length = int(header)
    if length > MAX_BODY_BYTES:
        return 413, f"larger than {MAX_BODY_BYTES} bytes"
    return length


def _started(alerts) -> float | None:
    """When the earliest acting alert began firing (Alertmanager's startsAt), Unix seconds."""
    return min((a.started for a in alerts if a.started is not None), default=None)


class AlertReceiver:
    """The HTTP receiver on `host:port` (0: a free port), acting for `settings`' service and target."""

    def __init__(self, settings: dict, *, token: str, host: str = "127.0.0.1", port: int = 0):
        if not token:
            raise TokenMissing("token: required: Alertmanager's bearer token")
        expected = f"Bearer {token}".encode()
        self.base = {k: v for k, v in settings.items() if k != "release"}
        self.check = load_settings(self.base, release="0.0.0-alert-webhook")  # refused here, before serving
        self.service = self.check.target.service
        self.lock = threading.Lock()
        self.outcomes: list[dict] = []  # what each acting notification led to, newest last
        self.acting: list[threading.Thread] = []  # not daemons: stopping waits for a rollback under way
        self.acting_lock = threading.Lock()
        self.stopping = False
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the standard library's name
                if self.path != PATH:
                    self._answer(404, f"POST {PATH}")
                    return
                if not hmac.compare_digest(self.headers.get("Authorization", "").encode(), expected):
                    self._answer(401, "a bearer token is required", {"WWW-Authenticate": "Bearer"})
                    return
                length = _body_length(self.headers.get("Content-Length"))
                if isinstance(length, tuple):
                    self._answer(*length)
                    return
                try:
                    alerts = acting_alerts(json.loads(self.rfile.read(length) or b"null"), receiver.service)
                except (ValueError, RecursionError) as exc:
                    self._answer(400, escape_line(exc) if isinstance(exc, WebhookRefused) else "not JSON")
                    return
                if alerts and not receiver.begin_acting(alerts):
                    self._answer(503, "stopping")
                    return
                self._answer(200, f"{len(alerts)} acting")

            def _answer(self, status: int, text: str, headers: dict | None = None) -> None:
                body = (text + "\n").encode()
                self.send_response(status)
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                if status >= 400:
                    self.send_header("Connection", "close")  # an unread body must not be taken for a request
                    self.close_connection = True
                self.send_header("Content-Type", "text/plain; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_args) -> None:
                pass

        self.server = ThreadingHTTPServer((host, port), Handler)
        self.url = f"http://{host}:{self.server.server_port}{PATH}"
        self.thread: threading.Thread | None = None

    def start(self) -> AlertReceiver:
        self.thread = threading.Thread(target=self.server.serve_forever, name="golive-alert-webhook", daemon=True)
        self.thread.start()
        return self

    def begin_acting(self, alerts) -> bool:
        """Act on the alerts in a thread of their own; False once stopping (nothing new starts)."""
        with self.acting_lock:
            if self.stopping:
                return False
            self.acting = [t for t in self.acting if t.is_alive()]
            thread = threading.Thread(target=self.act, args=(alerts,), name="golive-alert-webhook-act")
            self.acting.append(thread)
            thread.start()
            return True

    def stop(self) -> None:
        """Stop receiving, then wait for every rollback under way: none is cut off half-way."""
        with self.acting_lock:
            self.stopping = True
        self.server.shutdown()
        self.server.server_close()
        for thread in self.acting:
            thread.join()

    def act(self, alerts) -> dict:
        """Roll back the go-live holding the target, if one does (one notification at a time)."""
        from flows.rollback import roll_back, rollback_outcome
        from tasks.notify import announce
        from tasks.router import read_weight

        with self.lock:
            try:
                reading = read_weight.fn(self.check.target.router)
            except Exception as exc:  # noqa: BLE001 - a router that cannot be read: say so, act on nothing
                outcome = {"action": "none", "why": f"the router could not be read: {error_line(exc)}"}
                return self._done(outcome)
            ends = go_live_to_end(reading.fence)
            if ends is None:
                holder = reading.fence.describe() if reading.fence else "nobody"
                return self._done({"action": "none", "why": f"no go-live holds the target ({holder})"})
            release, generation = ends
            alerts = alerts_of_holder(alerts, reading.fence)
            if not alerts:
                return self._done({"action": "none", "why": f"every alert began before {reading.fence.describe()}"})
            try:
                cfg = load_settings(self.base, release=release)
            except SettingsError as exc:
                return self._done({"action": "none", "why": f"release {release!r}: {exc}"})
            reason = rollback_reason(alerts)
            state = roll_back(reason=reason, stage=_stage_of(reading), release=release, settings=cfg,
                              triggered_by="alertmanager", triggers=["critical-alert"], generation=generation,
                              breach_detected_at=_started(alerts))
            outcome = {"action": "rollback", "release": release, "generation": generation,
                       "outcome": rollback_outcome(state), "reason": reason}
        announce(cfg, "critical-alert", _stage_of(reading), reason, details={"rollback": outcome["outcome"]})
        return self._done(outcome)

    def _done(self, outcome: dict) -> dict:
        self.outcomes.append(outcome)
        logger.warning("alert webhook: %s", outcome)
        return outcome


def _stage_of(reading) -> int | None:
    """The stage the router's reading shows: its weight, the shadow stage's while it mirrors at 0,
    none at 0 without a mirror."""
    if reading.in_force == 0:
        return SHADOW_STAGE if reading.mirror else None
    return reading.in_force


def cmd_alert_webhook(args: argparse.Namespace) -> int:
    import signal
    import sys

    if not 0 <= args.port <= 65535:
        print(f"golive alert-webhook: --port: expected a port from 0 (any free one) to 65535, got {args.port}",
              file=sys.stderr)
        return 2
    try:
        settings = load_settings(args.config or {}, release="0.0.0-alert-webhook")
        receiver = AlertReceiver(settings.model_dump(mode="json"), token=read_token(args.token_file),
                                 host=args.host, port=args.port).start()
    except (SettingsError, TokenMissing, OSError) as exc:
        print(f"golive alert-webhook: {escape_line(exc)}", file=sys.stderr)
        return 2
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())  # a service manager's stop, handled as Ctrl-C
    # Said once a stop is handled: a service manager may stop it as soon as it reads the line.
    print(f"receiving Alertmanager's notifications at {receiver.url} for {receiver.service}", flush=True)
    try:
        while not stop.wait(3600):
            pass
    except KeyboardInterrupt:
        pass
    print("stopping: waiting for a rollback under way, if any", flush=True)
    receiver.stop()
    return 0


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("alert-webhook", help="Alertmanager's webhook: a critical alert rolls the canary back at once")
    p.add_argument("--config", help="golive settings (YAML): the service, the router, the evidence root")
    p.add_argument("--host", default="127.0.0.1", help="the address to listen on")
    p.add_argument("--port", type=int, default=19095, help="the port to listen on")
    p.add_argument("--token-file", help=f"the bearer token Alertmanager sends (else the environment's {TOKEN_ENV})")
    p.set_defaults(func=cmd_alert_webhook)
