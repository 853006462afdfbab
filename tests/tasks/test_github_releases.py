"""Files attached to a GitHub release through the fake GitHub: by content, so attaching twice
changes nothing; other bytes replace an asset and say so; a taken name (422) and a failed upload
that leaves a `starter` asset recover; the token reaches only the API and the uploads host."""

from __future__ import annotations

import hashlib
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from flows.attest import attach_to_release
from golive.settings import GitHubSettings
from tasks.github import GitHubError
from tasks.github_releases import ReleaseAssets
from tests.fakes.github_releases import Asset
from tests.fakes.gnupg import throwaway_gpg_home

TAG = "v1.4.0"


@pytest.fixture
def settings(github, monkeypatch) -> GitHubSettings:
    monkeypatch.setenv("GITHUB_TOKEN", github.token)
    github.tags.add(TAG)
    return GitHubSettings(repository=github.repository, api_url=github.url, max_wait_seconds=10)


@pytest.fixture
def files(tmp_path) -> dict:
    folder = tmp_path / "files"
    folder.mkdir()
    contents = {"spark-1.4.0.cdx.json": b'{"bomFormat": "CycloneDX"}\n', "spark-1.4.0.intoto.jsonl": b'{"a": 1}\n',
                "spark-1.4.0-py3-none-any.whl": b"PK wheel"}
    for name, data in contents.items():
        (folder / name).write_bytes(data)
    return {name: folder / name for name in contents}


@pytest.fixture
def staging(tmp_path):
    folder = tmp_path / "staging"
    folder.mkdir()
    return folder


def _on_release(github) -> dict[str, bytes]:
    release = github.release_of(TAG)
    return {a.name: a.data for a in github.assets.values() if a.release_id == release["id"]}


def _actions(report) -> dict[str, str]:
    return {a.name: a.action for a in report.assets}


def _sums(assets: dict[str, bytes]) -> str:
    return "".join(f"{hashlib.sha256(assets[n]).hexdigest()}  {n}\n" for n in sorted(assets) if n != "SHA256SUMS")


def test_the_release_is_made_and_every_file_uploaded_with_checksums_of_all(github, settings, files, staging):
    report = attach_to_release(settings, TAG, files, staging)
    assert report.release_created and not report.problems
    assert _actions(report) == {**{name: "uploaded" for name in files}, "SHA256SUMS": "uploaded"}
    on_release = _on_release(github)
    assert {n: d for n, d in on_release.items() if n != "SHA256SUMS"} == {n: p.read_bytes() for n, p in files.items()}
    assert on_release["SHA256SUMS"].decode() == _sums(on_release)
    kinds = {a.name: a.content_type for a in github.assets.values()}
    assert kinds["spark-1.4.0.cdx.json"] == "application/vnd.cyclonedx+json" and kinds["SHA256SUMS"] == "text/plain"


def test_attaching_twice_changes_nothing(github, settings, files, staging):
    attach_to_release(settings, TAG, files, staging)
    before, calls = dict(github.assets), len(github.calls)
    again = attach_to_release(settings, TAG, files, staging)
    assert set(_actions(again).values()) == {"skipped"} and not again.release_created
    assert github.assets == before
    assert {method for method, _ in github.calls[calls:]} == {"GET"}


def test_other_bytes_replace_the_asset_and_the_change_is_recorded(github, settings, files, staging):
    attach_to_release(settings, TAG, files, staging)
    old = hashlib.sha256(files["spark-1.4.0.cdx.json"].read_bytes()).hexdigest()
    files["spark-1.4.0.cdx.json"].write_bytes(b'{"bomFormat": "CycloneDX", "version": 2}\n')
    report = attach_to_release(settings, TAG, files, staging)
    changed = {a.name: a for a in report.assets if a.action == "replaced"}
    assert sorted(changed) == ["SHA256SUMS", "spark-1.4.0.cdx.json"]
    assert changed["spark-1.4.0.cdx.json"].old_sha256 == old
    assert changed["spark-1.4.0.cdx.json"].sha256 == hashlib.sha256(files["spark-1.4.0.cdx.json"].read_bytes()).hexdigest()
    on_release = _on_release(github)
    assert on_release["spark-1.4.0.cdx.json"] == files["spark-1.4.0.cdx.json"].read_bytes()
    assert on_release["SHA256SUMS"].decode() == _sums(on_release) and len(on_release) == 4


@pytest.mark.parametrize("theirs, action", [("same", "skipped"), ("other", "replaced")])
def test_a_name_taken_meanwhile_422_is_read_again_and_compared(github, settings, files, staging, theirs, action):
    name = "spark-1.4.0.cdx.json"
    github.race_uploads[name] = files[name].read_bytes() if theirs == "same" else b"someone else's"
    report = attach_to_release(settings, TAG, files, staging)
    outcome = next(a for a in report.assets if a.name == name)
    assert outcome.action == action and not report.problems
    assert "HTTP 422" in outcome.reason
    assert _on_release(github)[name] == files[name].read_bytes()


def test_a_failed_upload_that_left_a_starter_asset_is_cleaned_and_retried(github, settings, files, staging):
    github.fail_uploads = 2  # the first two uploads answer 502 and leave an empty asset in state `starter`
    report = attach_to_release(settings, TAG, files, staging)
    assert not report.problems
    first = report.assets[0]
    assert first.action == "uploaded" and "state starter" in first.reason and "HTTP 502" in first.reason
    assert all(a.state == "uploaded" for a in github.assets.values())
    assert _on_release(github)[first.name] == files[first.name].read_bytes()


def test_an_upload_that_keeps_failing_is_a_problem_naming_the_file(github, settings, files, staging):
    github.fail_uploads = 100
    report = attach_to_release(settings, TAG, files, staging)
    assert report.problems[0].startswith("spark-1.4.0.cdx.json: upload: HTTP 502 (text/html body) (3 tries)")


def test_without_github_digests_the_bytes_are_compared(github, settings, files, staging):
    github.with_digests = False
    attach_to_release(settings, TAG, files, staging)
    before = dict(github.assets)
    again = attach_to_release(settings, TAG, files, staging)
    assert set(_actions(again).values()) == {"skipped"} and github.assets == before
    assert set(github.download_authorizations) == {None}  # read from storage without the token


def test_a_name_github_would_rewrite_is_refused_and_the_rest_attached(github, settings, files, staging):
    (staging.parent / "release notes.md").write_text("notes")
    report = attach_to_release(settings, TAG, {**files, "release notes.md": staging.parent / "release notes.md"},
                               staging)
    assert report.problems == ["release notes.md: GitHub would rename it (an asset's name keeps to letters, digits, "
                               "'.', '-', '_', and neither starts nor ends with '.'); not attached"]
    assert "release notes.md" not in _on_release(github) and len(_on_release(github)) == 4


class _Listener(BaseHTTPRequestHandler):
    """Another host an upload_url could name: it answers 201 and keeps what it was sent."""

    seen: list[dict] = []

    def do_POST(self) -> None:  # noqa: N802 - the name http.server calls
        self.seen.append(dict(self.headers))
        self.send_response(201)
        self.end_headers()

    def log_message(self, *_args) -> None:
        pass


def test_the_token_never_goes_to_an_upload_url_on_another_host(github, settings, files, staging):
    _Listener.seen = []
    elsewhere = ThreadingHTTPServer(("127.0.0.1", 0), _Listener)
    threading.Thread(target=elsewhere.serve_forever, daemon=True).start()
    try:
        github.upload_origin = f"http://127.0.0.1:{elsewhere.server_address[1]}"
        with pytest.raises(GitHubError, match="is neither the API's host nor its uploads host"):
            attach_to_release(settings, TAG, files, staging)
    finally:
        elsewhere.shutdown()
        elsewhere.server_close()
    assert _Listener.seen == []  # nothing was sent there, least of all the token


def test_the_token_appears_in_no_log_report_or_file(github, settings, files, staging, caplog):
    caplog.set_level(logging.DEBUG)
    github.fail_uploads, github.race_uploads = 1, {"spark-1.4.0.intoto.jsonl": b"theirs"}
    report = attach_to_release(settings, TAG, files, staging)
    written = b"".join(p.read_bytes() for p in staging.iterdir())
    assert github.token not in caplog.text + report.model_dump_json()
    assert github.token.encode() not in written + b"".join(_on_release(github).values())


def test_a_good_signature_already_there_is_kept_and_a_stale_one_replaced(github, settings, files, staging,
                                                                         monkeypatch):
    with throwaway_gpg_home() as gpg:
        monkeypatch.setenv("GNUPGHOME", gpg.path)
        first = attach_to_release(settings, TAG, files, staging, gpg.fingerprint)
        assert _actions(first)["SHA256SUMS.asc"] == "uploaded"
        again = attach_to_release(settings, TAG, files, staging, gpg.fingerprint)
        assert set(_actions(again).values()) == {"skipped"}
        files["spark-1.4.0.cdx.json"].write_bytes(b"{}\n")
        third = attach_to_release(settings, TAG, files, staging, gpg.fingerprint)
        assert _actions(third)["SHA256SUMS.asc"] == "replaced"
        on_release = _on_release(github)
        (staging / "check").write_bytes(on_release["SHA256SUMS"])
        (staging / "check.asc").write_bytes(on_release["SHA256SUMS.asc"])
        assert "Good signature" in gpg.run("--verify", str(staging / "check.asc"), str(staging / "check")).stderr


def test_every_asset_is_read_back_by_name(github, settings, files, staging, tmp_path):
    attach_to_release(settings, TAG, files, staging)
    folder = tmp_path / "downloaded"
    folder.mkdir()
    names = ReleaseAssets(settings, TAG).download_all(folder)
    assert sorted(names) == sorted([*files, "SHA256SUMS"])
    assert all((folder / n).read_bytes() == p.read_bytes() for n, p in files.items())
    with pytest.raises(GitHubError, match="has no release for the tag v9.9.9"):
        ReleaseAssets(settings, "v9.9.9").download_all(folder)


def test_an_asset_someone_else_put_on_the_release_is_named_and_never_listed_or_signed(github, settings, files,
                                                                                       staging, monkeypatch):
    attach_to_release(settings, TAG, files, staging)
    release = github.release_of(TAG)
    github._add(Asset(github._id(), release["id"], "evil-1.4.0-py3-none-any.whl", b"evil", "application/zip"))
    with throwaway_gpg_home() as gpg:
        monkeypatch.setenv("GNUPGHOME", gpg.path)
        report = attach_to_release(settings, TAG, files, staging, gpg.fingerprint)
    assert report.problems == ["evil-1.4.0-py3-none-any.whl: on the release but not a file golive attaches; "
                               "left there, not in SHA256SUMS, not signed"]
    on_release = _on_release(github)
    assert b"evil" not in on_release["SHA256SUMS"] and on_release["evil-1.4.0-py3-none-any.whl"] == b"evil"
    assert on_release["SHA256SUMS"].decode() == _sums({n: d for n, d in on_release.items() if n in files})


def test_no_release_is_made_for_a_tag_github_does_not_have(github, settings, files, staging):
    github.tags.clear()
    with pytest.raises(GitHubError, match="the tag v1.4.0 is not on spark/trading; push it before attaching"):
        attach_to_release(settings, TAG, files, staging)
    assert github.releases == {} and github.tagged_default_branch == []


def test_the_release_is_a_draft_until_every_file_is_on_it(github, settings, files, staging):
    github.fail_uploads = 100
    report = attach_to_release(settings, TAG, files, staging)
    assert report.release_created and not report.published and github.release_of(TAG)["draft"] is True
    assert report.problems[-1] == "the release of v1.4.0 stays a draft: not all its files are on it"
    drafts = [call for call in github.calls if call[0] == "POST" and call[1].endswith("/releases")]
    github.fail_uploads = 0
    again = attach_to_release(settings, TAG, files, staging)  # finds its draft in the list, finishes, publishes
    assert not again.problems and again.published and not again.release_created
    assert github.release_of(TAG)["draft"] is False and len(github.releases) == 1
    assert [c for c in github.calls if c[0] == "POST" and c[1].endswith("/releases")] == drafts


def test_an_asset_being_replaced_stays_until_its_successor_is_uploaded(github, settings, files, staging):
    attach_to_release(settings, TAG, files, staging)
    name = "spark-1.4.0.cdx.json"
    old = files[name].read_bytes()
    files[name].write_bytes(b'{"bomFormat": "CycloneDX", "version": 2}\n')
    github.fail_uploads = 100
    report = attach_to_release(settings, TAG, files, staging)
    failed = next(a for a in report.assets if a.name == name)
    assert failed.action == "failed" and failed.reason.endswith("(3 tries); the old asset is kept")
    assert _on_release(github)[name] == old
    github.fail_uploads = 0
    again = attach_to_release(settings, TAG, files, staging)
    assert not again.problems and _actions(again)[name] == "replaced"
    assert _on_release(github)[name] == files[name].read_bytes() and sorted(_on_release(github)) == sorted(
        [*files, "SHA256SUMS"])


def test_an_asset_another_writer_is_uploading_is_left_alone(github, settings, files, staging):
    attach_to_release(settings, TAG, files, staging)
    name = "spark-1.4.0.cdx.json"
    github.asset_named(TAG, name).state = "open"
    files[name].write_bytes(b"{}\n")
    report = attach_to_release(settings, TAG, files, staging)
    assert f"{name}: another upload of it is under way (state open); left alone" in report.problems
    assert github.asset_named(TAG, name) is not None


DEEP = b"[" * 100_000 + b"]" * 100_000


@pytest.mark.parametrize("method, path, answer, error", [
    ("GET", "/repos/spark/trading/releases/tags/", (200, DEEP, {"content-type": "application/json"}),
     "GET release of v1.4.0: HTTP 200 but not a release object"),
    ("GET", "/repos/spark/trading/releases/tags/", (403, DEEP, {"content-type": "application/json"}),
     "GET release of v1.4.0: HTTP 403 (application/json body)"),
    ("GET", "/repos/spark/trading/releases/assets/", (302, b"", {"location": "file:///etc/passwd"}),
     "HTTP 302 to a location that is not a URL"),
])
def test_a_hostile_or_broken_answer_is_a_one_line_github_error(github, settings, files, staging, tmp_path,
                                                               method, path, answer, error):
    attach_to_release(settings, TAG, files, staging)
    github.hostile[(method, path)] = answer
    folder = tmp_path / "downloaded"
    folder.mkdir()
    with pytest.raises(GitHubError) as refused:
        ReleaseAssets(settings, TAG).download_all(folder)
    assert error in str(refused.value) and "\n" not in str(refused.value)


def test_an_upload_answered_201_with_no_asset_object_is_a_failed_upload(github, settings, files, staging):
    github.hostile[("POST", "/uploads/")] = (201, b"<html>ok</html>", {"content-type": "text/html"})
    report = attach_to_release(settings, TAG, files, staging)
    assert report.problems[0] == "spark-1.4.0.cdx.json: upload: HTTP 201 but not an asset object"


@pytest.mark.parametrize("location", ["http://[::1", "http://storage.example.invalid/a\x00b", "javascript:x"])
def test_a_redirect_to_no_url_is_a_one_line_github_error(location):
    import httpx

    from tasks.github_releases import _location

    redirect = httpx.Response(302, headers={"location": location}, request=httpx.Request(
        "GET", "https://api.github.com/repos/a/b/releases/assets/7"))
    with pytest.raises(GitHubError, match="^GET asset 7: HTTP 302 to a location that is not a URL$"):
        _location(redirect, 7)
