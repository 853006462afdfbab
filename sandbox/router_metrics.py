"""Zero-instrumentation signals: every request through the sandbox router, as Prometheus series.

nginx writes one access-log line per request it proxied (`render_nginx`'s `golive_router`
format: the track that served it, read off the upstream address; the status; the request time in
seconds; where it came from: `user`, or golive's own `probe` and `drill`, by `X-Synthetic`). This
module reads the lines written since the last scrape and counts them with prometheus_client:

- `golive_router_requests_total{track, code, source}`: requests per track, status code and source;
- `golive_router_request_duration_seconds{track}`: a histogram of the time nginx took per request;
- `golive_router_upgraded_sessions_total{track, source}`: websocket sessions (status 101), apart.

A session is logged when it ends, with the whole session as its time: one routed at weight 0
and closed ten seconds after the weight went to 100 (or cut by the old workers' shutdown) would
count as a user request on stable long after the change, and its minutes as a request's latency.
So it is counted as a session, never as a request: the split and the signals are requests'.

It is served at `/metrics` of the router's control API, so Prometheus scrapes it like any target
(job `router`). Why golive's own and not an exporter from Debian or PyPI: Debian's
prometheus-nginx-exporter reads nginx's stub_status, which has connections and a total request
count but no status, duration or upstream, so neither a 5xx ratio nor a latency per track; mtail
(Debian) could read the same log, but would be one more process to supervise and configure in a
language of its own, for four fields. The log is read at each scrape, so nothing runs between.
"""

from __future__ import annotations

import threading
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

__all__ = ["ACCESS_LOG", "DURATION_BUCKETS", "LOG_FORMAT", "RouterMetrics"]

ACCESS_LOG = "access.log"
# nginx's log_format: one line of four fields, spaces between (none of them holds a space).
LOG_FORMAT = "$golive_track $status $request_time $golive_source"
# Fine around the latencies a go-live judges (a 200 ms p95 lies between two buckets close together).
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.125, 0.15, 0.175, 0.2, 0.25, 0.3, 0.4, 0.5, 0.75,
                    1.0, 1.5, 2.5, 5.0, 10.0)
TRACKS = ("stable", "canary")
SOURCES = ("user", "probe", "drill")
# A line longer than this is no line of ours: skipped, never parsed.
MAX_LINE = 256
# Switching Protocols: the line is a websocket session, logged when it ends.
UPGRADED = "101"


class RouterMetrics:
    """The router's request counts, read from its access log at each `exposition()`."""

    def __init__(self, log: Path):
        self.log = log
        self.registry = CollectorRegistry()
        self.requests = Counter("golive_router_requests", "Requests the router proxied, by the track that served "
                                "them, status code and source", ["track", "code", "source"], registry=self.registry)
        self.duration = Histogram("golive_router_request_duration_seconds", "Time the router took per request "
                                  "(nginx $request_time)", ["track"], buckets=DURATION_BUCKETS,
                                  registry=self.registry)
        self.sessions = Counter("golive_router_upgraded_sessions", "Upgraded connections (websockets) the router "
                                "proxied, counted when they end, by the track that served them and source",
                                ["track", "source"], registry=self.registry)
        self.skipped = Counter("golive_router_log_lines_skipped", "Access-log lines that were not a request of "
                               "a track", registry=self.registry)
        self._offset = 0
        self._inode: int | None = None
        self._partial = b""
        self._lock = threading.Lock()

    def read_new_lines(self) -> int:
        """Count the lines written since the last read; a log replaced or cut short (rotation,
        a new nginx folder) is read from its start. Returns the number of requests counted."""
        with self._lock:
            try:
                stat = self.log.stat()
            except FileNotFoundError:
                return 0
            if stat.st_ino != self._inode or stat.st_size < self._offset:
                self._inode, self._offset, self._partial = stat.st_ino, 0, b""
            with open(self.log, "rb") as f:
                f.seek(self._offset)
                data = f.read(stat.st_size - self._offset)
            self._offset += len(data)
            lines = (self._partial + data).split(b"\n")
            self._partial = lines.pop()  # nginx may be mid-line: the rest comes next time
            return sum(self._count(line) for line in lines)

    def _count(self, line: bytes) -> int:
        fields = line.decode("ascii", "replace").split(" ") if len(line) <= MAX_LINE else []
        if len(fields) != 4 or fields[0] not in TRACKS or not fields[1].isdigit():
            self.skipped.inc()
            return 0
        track, code, seconds, source = fields
        try:
            elapsed = float(seconds)
        except ValueError:
            self.skipped.inc()
            return 0
        source = source if source in SOURCES else "other"
        if code == UPGRADED:
            self.sessions.labels(track=track, source=source).inc()
            return 0
        self.requests.labels(track=track, code=code, source=source).inc()
        self.duration.labels(track=track).observe(elapsed)
        return 1

    def exposition(self) -> bytes:
        """The series in Prometheus' text format, the log read up to now first."""
        self.read_new_lines()
        return generate_latest(self.registry)
