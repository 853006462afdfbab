"""Grafana Pyroscope: push a stage's profiles, tagged, to its HTTP ingest API.

`POST {url}/ingest?name=<app>.cpu{service=…,track=…,version=…,stage=…}&from=&until=&format=folded
&sampleRate=&spyName=pyspy&units=samples`, the body the folded stacks
(`a;b;c 12` a line), as Pyroscope's server API documents it. Its maintained Python client,
`pyroscope-io`, is an agent that runs inside the profiled process (`pyroscope.configure()` in the
service) and pushes its own samples: it does not fit here, where golive profiles the service from
outside with py-spy and changes nothing in it; so the profiles golive already took are pushed over
the same ingest API the agent uses. No Pyroscope server can run on the test machines: the tests
push to a small receiver that follows the documented API.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit, urlunsplit

import httpx
from prefect import task
from prefect.cache_policies import NO_CACHE

from golive.profiles import Profile, folded, pyroscope_name
from golive.validation import without_credentials, without_credentials_in
from tasks.http_client import shared_client
from tasks.secret_blocks import block_credentials

__all__ = ["PyroscopeError", "push_profile"]


class PyroscopeError(RuntimeError):
    """Pyroscope refused the profile or did not answer; one line."""


def _shown(url: str) -> str:
    """`url` as said in a message: no credentials and no query."""
    return urlunsplit(urlsplit(without_credentials(url))._replace(query="", fragment=""))


@task(name="push a profile to Pyroscope", cache_policy=NO_CACHE)
def push_profile(url: str, app: str, profile: Profile, tags: dict[str, str], started_at: float, ended_at: float,
                 rate_hz: int, timeout: float = 10.0, auth_secret_block: str | None = None) -> str:
    """Push one track's profile of a stage, once (no retry: the stage gives its pushes one budget).

    Args:
        url: Pyroscope's base URL (`process.profiling.pyroscope_url`).
        app: the application name (`process.profiling.pyroscope_app`).
        profile: the track's profile.
        tags: service, track, version, stage.
        started_at: when sampling began (Unix seconds).
        ended_at: when it ended.
        rate_hz: the sampling rate.
        timeout: seconds the push may take.
        auth_secret_block: the Prefect Secret it authenticates with, read here
            (`process.profiling.pyroscope_auth_secret_block`).

    Returns:
        The `name` it was pushed under."""
    name = pyroscope_name(app, tags)
    base = urlsplit(url)
    own = parse_qsl(base.query)  # the URL's own query (a tenant) goes with every push
    ingest = urlunsplit(base._replace(path=f"{base.path.rstrip('/')}/ingest", query="", fragment=""))
    params = {**dict(own), "name": name, "from": int(started_at), "until": max(int(ended_at), int(started_at) + 1),
              "format": "folded", "sampleRate": rate_hz, "spyName": "pyspy", "units": "samples"}
    headers, auth = {}, None
    if auth_secret_block is not None:
        try:
            headers, auth = block_credentials("process.profiling.pyroscope_auth_secret_block", auth_secret_block)
        except ValueError as exc:
            raise PyroscopeError(str(exc)) from None
    shown = _shown(url)
    try:
        response = shared_client().post(ingest, params=params, content=folded(profile).encode(), auth=auth,
                                        headers={"Content-Type": "text/plain", **headers}, timeout=timeout)
    except httpx.HTTPError as exc:
        raise PyroscopeError(f"Pyroscope at {shown} did not answer: {without_credentials_in(str(exc))}") from None
    if response.status_code >= 300:
        raise PyroscopeError(f"Pyroscope at {shown} refused the profile {name}: HTTP {response.status_code} "
                             f"{without_credentials_in(response.text[:200])!r}")
    return name
