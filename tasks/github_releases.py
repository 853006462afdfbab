"""GitHub's releases with httpx: the release of a tag, its assets, and files attached as assets.

Documented shapes only: `GET /repos/{owner}/{repo}/releases/tags/{tag}` (404: no published
release; a draft is found in `GET …/releases`, paged), `GET …/git/ref/tags/{tag}` (404: the tag is
not on GitHub, and no release is made for it), `POST …/releases {"tag_name", "name", "draft": true}`
and `PATCH …/releases/{id} {"draft": false}` once its files are on it, so nobody sees a release
half filled, `GET …/releases/{id}/assets` (paged),
`POST {upload_url}?name=N&label=L` with the file's media type as `Content-Type` and its bytes as
the body, `PATCH …/releases/assets/{id} {"name"}`, `DELETE …/releases/assets/{id}`, and
`GET …/releases/assets/{id}` with `Accept: application/octet-stream`, which answers the bytes or
redirects to storage.

An upload can go wrong in two documented ways, each recovered here: a name that is taken answers
422 `already_exists` (the asset is read again and compared), and a failed upload can leave an
empty asset in state `starter` under the name (it is removed and the file uploaded again).

The token (tasks/github: a GitHubCredentials block or `$GITHUB_TOKEN`) goes in the Authorization
header to the API's own host and to the uploads host of the same deployment only: the host of
`process.github.api_url` (GitHub Enterprise serves uploads there too, under /api/uploads), or
uploads.github.com beside api.github.com. An `upload_url` anywhere else is refused, and a
download's redirect to storage is followed without the token.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time
from pathlib import Path
from urllib.parse import quote, urljoin

import httpx
from pydantic import BaseModel, Field

from golive.attest import Decision, LocalFile, RemoteAsset, decide, name_problem
from golive.settings import GitHubSettings
from golive.validation import escape_line
from tasks.github import GitHub, GitHubError, _message, _origin, _token
from tasks.http_client import shared_client

__all__ = ["AssetOutcome", "AttachReport", "ReleaseAssets", "upload_allowed"]

_TEMPLATE = re.compile(r"\{[^}]*\}$")
# An upload that keeps failing is given up after this many tries (each already retried on a 5xx).
_UPLOAD_TRIES = 3
# GitHub's largest release asset.
MAX_ASSET_BYTES = 2 << 30
_PUBLIC_API = ("https", "api.github.com", None)
_PUBLIC_UPLOADS = ("https", "uploads.github.com", None)


def upload_allowed(api_url: str, upload_url: str) -> bool:
    """Whether the token may go to `upload_url`: the API's own host, or the uploads host of the
    public deployment."""
    api, upload = _origin(api_url), _origin(upload_url)
    return upload == api or (api == _PUBLIC_API and upload == _PUBLIC_UPLOADS)


class AssetOutcome(BaseModel):
    name: str
    action: str  # uploaded, skipped, replaced, refused, failed
    reason: str
    sha256: str | None = None
    size: int | None = None
    media_type: str | None = None
    old_sha256: str | None = None
    asset_id: int | None = None


class ReleaseAssets:
    """One release's assets, for one repository and tag."""

    def __init__(self, settings: GitHubSettings, tag: str):
        self.settings = settings
        self.tag = tag
        self.token = _token(settings)
        self.api = GitHub(settings, self.token)
        self.repo_path = f"/repos/{settings.repository}"
        self.release: dict = {}
        self.created = False
        self._uploads: GitHub | None = None

    def find(self) -> dict | None:
        """The release of the tag, a draft among them (GitHub finds a draft by its tag only in the
        list of releases); None when it has none."""
        response = self.api.request("GET", f"{self.repo_path}/releases/tags/{quote(self.tag, safe='')}")
        if response.status_code == 200:
            self.release = _release_object(response, f"GET release of {self.tag}")
            return self.release
        if response.status_code != 404:
            raise GitHubError(f"GET release of {self.tag}: {_message(response)}")
        drafts = [r for r in self.api._pages(f"{self.repo_path}/releases", {"per_page": 100})
                  if isinstance(r, dict) and r.get("draft") is True and r.get("tag_name") == self.tag]
        if not drafts:
            return None
        self.release = _release_dict(drafts[0], f"GET releases ({self.tag})")
        return self.release

    def tag_exists(self) -> bool:
        """Whether the repository on GitHub has the tag (`GET …/git/ref/tags/{tag}`)."""
        response = self.api.request("GET", f"{self.repo_path}/git/ref/tags/{quote(self.tag, safe='')}")
        if response.status_code in (200, 404):
            return response.status_code == 200
        raise GitHubError(f"GET tag {self.tag}: {_message(response)}")

    def find_or_create(self, name: str | None = None, body: str = "") -> dict:
        """The release of the tag, made as a draft when there is none (`publish` makes it public
        once its files are on it); a release another writer made meanwhile (422) is read and
        used. GitHubError when the tag is not on GitHub: a release of a missing tag would make
        GitHub tag the default branch's head."""
        if self.find() is not None:
            return self.release
        if not self.tag_exists():
            raise GitHubError(f"the tag {self.tag} is not on {self.settings.repository}; push it before attaching "
                              f"(a release made now would tag the default branch's head)")
        response = self.api.request("POST", f"{self.repo_path}/releases", json={
            "tag_name": self.tag, "name": name or self.tag, "body": body, "draft": True})
        if response.status_code == 201:
            self.release, self.created = _release_object(response, f"POST release {self.tag}"), True
            return self.release
        if response.status_code == 422 and self.find() is not None:
            return self.release
        raise GitHubError(f"POST release {self.tag}: {_message(response)}")

    def publish(self) -> None:
        """Make the draft release public (`PATCH …/releases/{id} {"draft": false}`)."""
        if self.release.get("draft") is not True:
            return
        response = self.api.request("PATCH", f"{self.repo_path}/releases/{self.release['id']}", json={"draft": False})
        if response.status_code != 200:
            raise GitHubError(f"PATCH release {self.tag} (publish): {_message(response)}")
        self.release = _release_object(response, f"PATCH release {self.tag}")

    def assets(self) -> list[dict]:
        """Every asset of the release, as GitHub describes them."""
        return self.api._pages(f"{self.repo_path}/releases/{self.release['id']}/assets", {"per_page": 100})

    def remote(self) -> dict[str, RemoteAsset]:
        """The release's assets by name, as golive.attest reads them."""
        try:
            return {asset.name: asset for asset in map(RemoteAsset.from_api, self.assets())}
        except (KeyError, TypeError, ValueError, AttributeError):
            raise GitHubError(f"GET assets of {self.tag}: HTTP 200 but not a list of asset objects") from None

    def delete(self, asset_id: int) -> None:
        response = self.api.request("DELETE", f"{self.repo_path}/releases/assets/{asset_id}")
        if response.status_code not in (204, 404):  # 404: gone already
            raise GitHubError(f"DELETE asset {asset_id}: {_message(response)}")

    def download(self, asset_id: int, target: Path | None = None, limit: int = MAX_ASSET_BYTES) -> str:
        """The sha256 of an asset's bytes, read through the API (written to `target` when given);
        a redirect to storage is followed without the token."""
        response = self.api.request("GET", f"{self.repo_path}/releases/assets/{asset_id}",
                                    headers={"Accept": "application/octet-stream"})
        digest = hashlib.sha256()
        sink = target.open("wb") if target is not None else None
        try:
            if response.status_code == 200:
                _take(response.content, digest, sink, limit, asset_id)
            elif response.status_code in (301, 302, 303, 307, 308) and "location" in response.headers:
                location = _location(response, asset_id)
                with shared_client().stream("GET", location, timeout=60) as stored:
                    if stored.status_code != 200:
                        raise GitHubError(f"asset {asset_id}: storage answered HTTP {stored.status_code}")
                    read = 0
                    for chunk in stored.iter_bytes():
                        read += len(chunk)
                        _take(chunk, digest, sink, limit - read + len(chunk), asset_id)
            else:
                raise GitHubError(f"GET asset {asset_id}: {_message(response)}")
        except httpx.TransportError as exc:
            raise GitHubError(f"asset {asset_id}: storage unreachable ({type(exc).__name__})") from None
        finally:
            if sink is not None:
                sink.close()
        return digest.hexdigest()

    def download_all(self, folder: Path) -> list[str]:
        """Every asset of the tag's release into `folder`, by its name; GitHubError when there is
        no release, or an asset that is unfinished or whose name is not a plain file name."""
        if self.find() is None:
            raise GitHubError(f"{self.settings.repository} has no release for the tag {self.tag}")
        names = []
        for asset in self.remote().values():
            if name_problem(asset.name) or asset.name in names:
                raise GitHubError(f"asset {escape_line(asset.name)[:120]}: not a name golive writes to disk")
            if asset.state != "uploaded":
                raise GitHubError(f"asset {asset.name}: an unfinished upload (state {escape_line(asset.state)})")
            self.download(asset.id, folder / asset.name)
            names.append(asset.name)
        return names

    def _upload_client(self, url: str) -> GitHub:
        if not upload_allowed(self.settings.api_url, url):
            scheme, host, port = _origin(url)
            raise GitHubError(f"upload_url: {scheme}://{host}{f':{port}' if port else ''} is neither the API's host "
                              f"nor its uploads host (process.github.api_url); the token is not sent there")
        if self._uploads is None:
            origin = "{}://{}{}".format(*_origin(url)[:2], f":{_origin(url)[2]}" if _origin(url)[2] else "")
            self._uploads = GitHub(self.settings.model_copy(update={"api_url": origin}), self.token)
        return self._uploads

    def upload(self, name: str, data: bytes, media_type: str, label: str = "") -> httpx.Response | None:
        """One POST of the file to the release's upload_url, a rate limit waited out as the API's
        are; None when the connection failed (the upload may or may not have left an asset)."""
        url = _TEMPLATE.sub("", str(self.release.get("upload_url", "")))
        uploads = self._upload_client(url)
        params = {"name": name, **({"label": label} if label else {})}
        while True:
            try:
                response = uploads.client.post(url, params=params, content=data, headers={"Content-Type": media_type},
                                               timeout=120)
            except httpx.TransportError:
                return None
            wait = uploads._retry_after(response)
            if wait is None:
                return response
            if uploads.waited + wait > self.settings.max_wait_seconds:
                raise GitHubError(f"upload {name}: rate limited for {wait:.0f} s more than "
                                  f"process.github.max_wait_seconds allows")
            time.sleep(wait)
            uploads.waited += wait

    def put(self, local: LocalFile, data: bytes, media_type: str, decision: Decision,
            existing: RemoteAsset | None) -> AssetOutcome:
        """Carry out `decision` for one file, recovering from a taken name (422) and from a failed
        upload that left an unfinished asset; the outcome says what was done and why. An asset
        being replaced stays until its successor is uploaded (under a name of its own, renamed
        once the old is gone); one another writer is uploading (state `open`) is left alone."""
        outcome = dict(name=local.name, sha256=local.sha256, size=local.size, media_type=media_type)
        if decision.action == "skip":
            return AssetOutcome(action="skipped", reason=decision.reason, asset_id=existing and existing.id, **outcome)
        if existing is not None and existing.state == "open":
            return AssetOutcome(action="failed", reason="another upload of it is under way (state open); left alone",
                                asset_id=existing.id, **outcome)
        if decision.action == "replace" and existing is not None and existing.state == "uploaded":
            return self._replace(local, data, media_type, decision, existing, outcome)
        if decision.action == "replace" and existing is not None:
            self.delete(existing.id)  # an unfinished upload holds nothing worth keeping
        action = "replaced" if decision.action == "replace" else "uploaded"
        return self._upload_as(local.name, local, data, media_type, action, decision.reason,
                               decision.old_sha256 if action == "replaced" else None, outcome)

    def _replace(self, local: LocalFile, data: bytes, media_type: str, decision: Decision, existing: RemoteAsset,
                 outcome: dict) -> AssetOutcome:
        """The new bytes uploaded under a name of their own, then the old asset removed and the new
        one renamed (`PATCH …/releases/assets/{id} {"name"}`): the release never lacks the file
        while an upload is failing."""
        temporary = f"{local.name}.{secrets.token_hex(4)}.new"
        new = self._upload_as(temporary, local, data, media_type, "replaced", decision.reason, decision.old_sha256,
                              outcome)
        if new.action != "replaced":
            return new.model_copy(update={"action": "failed", "reason": f"{new.reason}; the old asset is kept"})
        try:
            self.delete(existing.id)
            response = self.api.request("PATCH", f"{self.repo_path}/releases/assets/{new.asset_id}",
                                        json={"name": local.name})
            if response.status_code != 200:
                raise GitHubError(_message(response))
        except GitHubError as exc:
            return new.model_copy(update={"action": "failed", "reason": (
                f"the new bytes are on the release as {temporary}, but putting them in the old one's place "
                f"failed: {exc}")})
        return new

    def _upload_as(self, name: str, local: LocalFile, data: bytes, media_type: str, action: str, reason: str,
                   old: str | None, outcome: dict) -> AssetOutcome:
        """Upload `local`'s bytes as the asset `name`, up to _UPLOAD_TRIES times."""
        last = ""
        for _ in range(_UPLOAD_TRIES):
            response = self.upload(name, data, media_type)
            status = "no answer" if response is None else f"HTTP {response.status_code}"
            if response is not None and response.status_code == 201:
                try:
                    uploaded = RemoteAsset.from_api(response.json())
                except (ValueError, KeyError, TypeError, AttributeError, RecursionError):
                    return AssetOutcome(action="failed", reason="upload: HTTP 201 but not an asset object", **outcome)
                if uploaded.digest not in (None, local.sha256) or uploaded.size != local.size:
                    return AssetOutcome(action="failed", reason="GitHub holds other bytes than were sent",
                                        asset_id=uploaded.id, **outcome)
                return AssetOutcome(action=action, reason=reason, old_sha256=old, asset_id=uploaded.id, **outcome)
            last = status if response is None else _message(response)
            if response is not None and response.status_code != 422 and response.status_code < 500:
                return AssetOutcome(action="failed", reason=f"upload: {last}", **outcome)
            # 422: the name is taken; 5xx: the upload failed, perhaps leaving an unfinished asset.
            there = self.remote().get(name)
            if there is None:
                continue
            if there.state == "open":
                return AssetOutcome(action="failed", reason=f"upload: {last}; another upload of it is under way "
                                                            f"(state open), left alone", **outcome)
            again = decide(local, there)
            if again.action == "compare":
                again = decide(local, RemoteAsset(there.id, there.name, there.size, there.state,
                                                  self.download(there.id)))
            if again.action == "skip":
                return AssetOutcome(action="skipped" if action == "uploaded" else action,
                                    reason=f"{reason}; the upload met {status} and the asset there "
                                           f"holds the same bytes", old_sha256=old, asset_id=there.id, **outcome)
            self.delete(there.id)
            if there.state == "uploaded":
                action, old = "replaced", there.digest
            reason = f"{reason}; {again.reason} after {status}, removed and uploaded again"
        return AssetOutcome(action="failed", reason=f"upload: {last} ({_UPLOAD_TRIES} tries)", **outcome)


def _release_object(response: httpx.Response, what: str) -> dict:
    try:
        release = response.json()
    except (ValueError, RecursionError):
        release = None
    return _release_dict(release, f"{what}: HTTP {response.status_code}")


def _release_dict(release: object, what: str) -> dict:
    if not isinstance(release, dict) or not isinstance(release.get("id"), int) or "upload_url" not in release:
        raise GitHubError(f"{what} but not a release object")
    return release


def _location(response: httpx.Response, asset_id: int) -> str:
    """Where a download redirects to, as an absolute URL; GitHubError when it is not one."""
    try:
        location = urljoin(str(response.request.url), response.headers["location"])
        url = httpx.URL(location)
    except (ValueError, httpx.InvalidURL):
        url = None
    if url is None or url.scheme not in ("http", "https") or not url.host:
        raise GitHubError(f"GET asset {asset_id}: HTTP {response.status_code} to a location that is not a URL")
    return location


def _take(chunk: bytes, digest, sink, room: int, asset_id: int) -> None:
    if len(chunk) > room:
        raise GitHubError(f"asset {asset_id}: larger than {MAX_ASSET_BYTES} bytes, not read")
    digest.update(chunk)
    if sink is not None:
        sink.write(chunk)


class AttachReport(BaseModel):
    repository: str
    tag: str
    release_id: int | None = None
    release_created: bool = False
    published: bool = False  # a draft made public once every file was on it
    assets: list[AssetOutcome] = Field(default_factory=list)
    problems: list[str] = Field(default_factory=list)
