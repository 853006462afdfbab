"""The `process.profiling` settings: sampling each track during a stage, and where profiles go.

Kept in a module of its own (the settings file imports it) so that the profiler's knobs are in one
place beside the profile math (`golive.profiles`).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictBool

from golive.validation import check_service_url

__all__ = ["ProfilingSettings"]


class ProfilingSettings(BaseModel):
    """py-spy samples the stable and the canary process through each stage (non-blocking: the
    service is never paused); the profiles, their difference and the advice go to the evidence."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False, str_min_length=1)  # no empty text

    enabled: StrictBool = True
    rate_hz: int = Field(20, ge=1, le=200, strict=True)  # samples a second: modest, the cost is in the README
    py_spy: str = Field("py-spy", min_length=1)  # the executable; default: the one beside golive's python, else PATH
    # The service's process id per track, for a target golive did not start. Without one, a service at
    # a loopback URL is found as the process listening on the URL's port (the sandbox's case).
    pids: dict[str, Annotated[int, Field(gt=0, strict=True)]] = Field(default_factory=dict)
    # Grafana Pyroscope's HTTP ingest (POST {url}/ingest); None: profiles stay in the evidence only.
    pyroscope_url: Annotated[str, AfterValidator(check_service_url)] | None = None
    pyroscope_app: str = Field("golive", pattern=r"^[A-Za-z0-9_.-]+$")  # `<app>.cpu{service=…,track=…,…}`
    # A Prefect Secret for a Pyroscope that asks for one: a bearer token or {username, password}.
    pyroscope_auth_secret_block: str | None = None
    # The services' GC pause histogram with a `generation` label (`loopwatch`), read from each
    # track's /metrics at the profile's start and end for the GC advice; None: not read.
    gc_pause_metric: str | None = Field("spark_gc_pause_seconds", pattern=r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")

    def model_post_init(self, _context) -> None:
        unknown = sorted(set(self.pids) - {"stable", "canary"})
        if unknown:
            raise ValueError(f"pids.{unknown[0]}: expected the track stable or canary")
