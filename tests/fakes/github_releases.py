"""GitHub's releases and release assets, as the fake GitHub (tests/fakes/github_api.py) serves them.

Documented shapes: a release object with `id`, `tag_name`, `name`, `draft`, `upload_url` (with its
`{?name,label}` template) and `assets`; an asset with `id`, `name`, `label`, `state` ("uploaded",
or "starter" for an upload that failed part way), `size`, `digest` ("sha256:…"), `content_type`,
`browser_download_url`. Uploads go to a path of their own, standing for the uploads host
(`/uploads/repos/…/releases/{id}/assets?name=&label=`, the body the file's bytes); a taken name
answers 422 `already_exists`. Downloading an asset through the API with
`Accept: application/octet-stream` redirects to `/downloads/…`, standing for storage, which needs
no token (and records whether one came). A draft is not found by its tag, only in the list of
releases; `PATCH` publishes it. `tags` are the repository's tags (`GET …/git/ref/tags/{tag}`); a
release made for another tag is recorded in `tagged_default_branch`, as GitHub would tag the
default branch's head.

Knobs inject each refusal: `fail_uploads` (the next uploads answer a proxy's 502 and leave an
empty `starter` asset under the name), `race_uploads` (another writer uploads these bytes under
the name just before ours, which then meets 422), `with_digests` (False: assets without a
`digest`, as older GitHub answered), `upload_origin` (an upload_url on another host).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

BAD_GATEWAY = "<html><head><title>502 Bad Gateway</title></head>\n<body><h1>502 Bad Gateway</h1></body></html>\n"
NOT_FOUND = {"message": "Not Found", "documentation_url": "https://docs.github.com/rest"}


def _already_exists(resource: str, field_name: str) -> JSONResponse:
    return JSONResponse({"message": "Validation Failed", "errors": [
        {"resource": resource, "code": "already_exists", "field": field_name}]}, status_code=422)


@dataclass
class Asset:
    id: int
    release_id: int
    name: str
    data: bytes
    content_type: str
    label: str = ""
    state: str = "uploaded"


@dataclass
class FakeReleases:
    """The releases part of the fake: mixed into FakeGitHub, which serves it and sets `url`."""
    releases: dict[int, dict] = field(default_factory=dict)
    assets: dict[int, Asset] = field(default_factory=dict)
    fail_uploads: int = 0
    race_uploads: dict[str, bytes] = field(default_factory=dict)
    with_digests: bool = True
    upload_origin: str | None = None
    tags: set[str] = field(default_factory=set)  # the tags pushed to the repository
    download_authorizations: list[str | None] = field(default_factory=list)
    tagged_default_branch: list[str] = field(default_factory=list)  # releases made for a tag not pushed
    _next_id: int = 100

    def _id(self) -> int:
        self._next_id += 1
        return self._next_id

    def _add(self, asset: Asset) -> Asset:
        self.assets[asset.id] = asset
        return asset

    def _asset(self, asset: Asset) -> dict:
        repository = getattr(self, "repository")
        data = {"id": asset.id, "name": asset.name, "label": asset.label, "state": asset.state,
                "size": len(asset.data), "content_type": asset.content_type, "download_count": 0,
                "url": f"{self.url}/repos/{repository}/releases/assets/{asset.id}",
                "browser_download_url": f"{self.url}/downloads/{asset.id}/{asset.name}"}
        if self.with_digests and asset.state == "uploaded":
            data["digest"] = "sha256:" + hashlib.sha256(asset.data).hexdigest()
        elif self.with_digests:
            data["digest"] = None
        return data

    def _release(self, release: dict) -> dict:
        repository = getattr(self, "repository")
        origin = self.upload_origin or self.url
        return {**release, "url": f"{self.url}/repos/{repository}/releases/{release['id']}",
                "upload_url": f"{origin}/uploads/repos/{repository}/releases/{release['id']}/assets{{?name,label}}",
                "assets": [self._asset(a) for a in self.assets.values() if a.release_id == release["id"]]}

    def release_of(self, tag: str) -> dict | None:
        return next((r for r in self.releases.values() if r["tag_name"] == tag), None)

    def asset_named(self, tag: str, name: str) -> Asset | None:
        release = self.release_of(tag)
        return next((a for a in self.assets.values() if release and a.release_id == release["id"] and a.name == name),
                    None)

    def tamper(self, tag: str, name: str, data: bytes) -> None:
        """Someone with write access swaps an asset's bytes (GitHub's digest follows them)."""
        self.asset_named(tag, name).data = data

    async def get_release_by_tag(self, request: Request) -> Response:
        release = self.release_of(request.path_params["tag"])
        if release is None or release["draft"]:  # GitHub finds no draft by its tag
            return JSONResponse(NOT_FOUND, status_code=404)
        return JSONResponse(self._release(release))

    async def git_ref(self, request: Request) -> Response:
        tag = request.path_params["tag"]
        if tag not in self.tags:
            return JSONResponse(NOT_FOUND, status_code=404)
        return JSONResponse({"ref": f"refs/tags/{tag}", "object": {"type": "tag", "sha": "0" * 40}})

    async def releases_list_or_create(self, request: Request) -> Response:
        if request.method == "GET":
            return JSONResponse([self._release(r) for r in reversed(self.releases.values())])
        body = await request.json()
        if body["tag_name"] not in self.tags:  # GitHub would tag the default branch's head
            self.tags.add(body["tag_name"])
            self.tagged_default_branch.append(body["tag_name"])
        if any(r["tag_name"] == body["tag_name"] and not r["draft"] for r in self.releases.values()):
            return _already_exists("Release", "tag_name")
        release = {"id": self._id(), "tag_name": body["tag_name"], "name": body.get("name") or body["tag_name"],
                   "body": body.get("body", ""), "draft": bool(body.get("draft")), "prerelease": False}
        self.releases[release["id"]] = release
        return JSONResponse(self._release(release), status_code=201)

    async def update_release(self, request: Request) -> Response:
        release = self.releases.get(int(request.path_params["release_id"]))
        if release is None:
            return JSONResponse(NOT_FOUND, status_code=404)
        release.update({k: v for k, v in (await request.json()).items() if k in ("draft", "name", "body")})
        return JSONResponse(self._release(release))

    async def list_assets(self, request: Request) -> Response:
        release_id = int(request.path_params["release_id"])
        if release_id not in self.releases:
            return JSONResponse(NOT_FOUND, status_code=404)
        per_page = int(request.query_params.get("per_page", 30))
        page = int(request.query_params.get("page", 1))
        found = [self._asset(a) for a in self.assets.values() if a.release_id == release_id]
        headers = {}
        if page * per_page < len(found):
            headers["link"] = (f'<{self.url}{request.url.path}?per_page={per_page}&page={page + 1}>; rel="next"')
        return JSONResponse(found[(page - 1) * per_page: page * per_page], headers=headers)

    async def upload_asset(self, request: Request) -> Response:
        release_id = int(request.path_params["release_id"])
        name, label = request.query_params.get("name"), request.query_params.get("label", "")
        if release_id not in self.releases or not name:
            return JSONResponse(NOT_FOUND, status_code=404)
        data = await request.body()
        kind = request.headers.get("content-type", "")
        if name in self.race_uploads:
            other = self.race_uploads.pop(name)
            if not any(a.release_id == release_id and a.name == name for a in self.assets.values()):
                self._add(Asset(self._id(), release_id, name, other, kind))
        if any(a.release_id == release_id and a.name == name for a in self.assets.values()):
            return _already_exists("ReleaseAsset", "name")
        if self.fail_uploads > 0:
            self.fail_uploads -= 1
            self._add(Asset(self._id(), release_id, name, b"", kind, label, state="starter"))
            return HTMLResponse(BAD_GATEWAY, status_code=502)
        asset = self._add(Asset(self._id(), release_id, name, data, kind, label))
        return JSONResponse(self._asset(asset), status_code=201)

    async def asset(self, request: Request) -> Response:
        asset = self.assets.get(int(request.path_params["asset_id"]))
        if asset is None:
            return JSONResponse(NOT_FOUND, status_code=404)
        if request.method == "DELETE":
            del self.assets[asset.id]
            return Response(status_code=204)
        if request.method == "PATCH":
            name = (await request.json()).get("name", asset.name)
            if any(a.release_id == asset.release_id and a.name == name and a is not asset for a in self.assets.values()):
                return _already_exists("ReleaseAsset", "name")
            asset.name = name
            return JSONResponse(self._asset(asset))
        if request.headers.get("accept") == "application/octet-stream":
            return Response(status_code=302, headers={"location": f"{self.url}/downloads/{asset.id}/{asset.name}"})
        return JSONResponse(self._asset(asset))

    async def download(self, request: Request) -> Response:
        self.download_authorizations.append(request.headers.get("authorization"))
        asset = self.assets.get(int(request.path_params["asset_id"]))
        if asset is None:
            return JSONResponse(NOT_FOUND, status_code=404)
        return Response(asset.data, media_type="application/octet-stream")

    def release_routes(self, prefix: str) -> list[Route]:
        return [
            Route(f"{prefix}/releases/tags/{{tag}}", self.get_release_by_tag),
            Route(f"{prefix}/releases", self.releases_list_or_create, methods=["GET", "POST"]),
            Route(f"{prefix}/releases/{{release_id:int}}", self.update_release, methods=["PATCH"]),
            Route(f"{prefix}/git/ref/tags/{{tag}}", self.git_ref),
            Route(f"{prefix}/releases/{{release_id:int}}/assets", self.list_assets),
            Route(f"{prefix}/releases/assets/{{asset_id:int}}", self.asset, methods=["GET", "DELETE", "PATCH"]),
            Route(f"/uploads{prefix}/releases/{{release_id:int}}/assets", self.upload_asset, methods=["POST"]),
            Route("/downloads/{asset_id:int}/{name}", self.download),
        ]
