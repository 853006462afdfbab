"""`golive attest` on a small project: the files of its build, verified; bad input refused in one
line before anything is written; `--attach` to the fake GitHub, and `golive evidence verify
--release` reading the release back, which a tampered asset fails."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from cli.main import main
from golive.signing import SigningKey, generate_key
from tests.fakes.github_releases import Asset
from tests.fakes.gnupg import throwaway_gpg_home

NAME = "spark-client"
BUILT = ["SHA256SUMS", "SHA256SUMS.asc", "signing_key.pub.pem", "spark_client-1.4.0-py3-none-any.whl",
         "spark_client-1.4.0.cdx.json", "spark_client-1.4.0.intoto.jsonl", "spark_client-1.4.0.tar.gz"]


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("project")
    (folder / "pyproject.toml").write_text(textwrap.dedent(f"""\
        [build-system]
        requires = ["setuptools>=69"]
        build-backend = "setuptools.build_meta"

        [project]
        name = "{NAME}"
        version = "1.4.0"
        dependencies = ["httpx>=0.27"]

        [project.optional-dependencies]
        test = ["pytest>=8"]

        [tool.setuptools]
        py-modules = ["spark_client"]
        """))
    (folder / "spark_client.py").write_text("def hello():\n    return 'hello'\n")
    return folder


@pytest.fixture(scope="module")
def keys(tmp_path_factory) -> tuple[Path, Path]:
    return generate_key(tmp_path_factory.mktemp("keys"))


@pytest.fixture
def gpg(monkeypatch):
    with throwaway_gpg_home() as home:
        monkeypatch.setenv("GNUPGHOME", home.path)
        monkeypatch.delenv("GOLIVE_GPG_KEY", raising=False)
        yield home


@pytest.fixture(autouse=True)
def _cache_and_time(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("GOLIVE_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "attest-cache"))
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1767225600")  # as a git work tree's commit time would


def _attest(project, keys, out, *extra) -> int:
    return main(["attest", "--project", str(project), "--out", str(out), "--key", str(keys[0]), *extra])


def test_attest_leaves_the_build_its_sbom_signed_provenance_and_signed_checksums_verified(
        project, keys, gpg, tmp_path, capsys):
    out = tmp_path / "dist" / "attest"
    assert _attest(project, keys, out, "--gpg-key", gpg.user_id) == 0
    printed = capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == BUILT
    assert "sigstore: not signed keyless: no identity token" in printed
    keyid = SigningKey.from_file(keys[0]).keyid[:16]
    assert printed.rstrip().endswith(f"{out}: verifies: 7 files, 2 signatures checked "
                                     f"(P-256 key {keyid}…; .asc files with gpg)")

    sbom = json.loads((out / "spark_client-1.4.0.cdx.json").read_text())
    assert sbom["bomFormat"] == "CycloneDX" and sbom["specVersion"] == "1.6"
    assert (sbom["metadata"]["component"]["name"], sbom["metadata"]["component"]["version"]) == (NAME, "1.4.0")
    names = {c["name"] for c in sbom["components"]}
    assert {"httpx", "httpcore", "certifi", "idna"} <= names  # what httpx reaches, in the versions installed
    assert "pytest" not in names and "prefect" not in names  # an extra, and the build's own environment

    from golive.signing import load_public_key, verify_envelope
    envelope = json.loads((out / "spark_client-1.4.0.intoto.jsonl").read_text().splitlines()[0])
    _, payload = verify_envelope(envelope, load_public_key(keys[1].read_bytes()))
    statement = json.loads(payload)
    assert statement["_type"] == "https://in-toto.io/Statement/v1"
    assert statement["predicateType"] == "https://slsa.dev/provenance/v1"
    assert {s["name"] for s in statement["subject"]} == {
        "spark_client-1.4.0-py3-none-any.whl", "spark_client-1.4.0.tar.gz", "spark_client-1.4.0.cdx.json"}
    sums = (out / "SHA256SUMS").read_text()
    assert sums.count("\n") == 5 and "SHA256SUMS" not in sums  # every file but itself and its signature
    assert "Good signature" in gpg.run("--verify", str(out / "SHA256SUMS.asc"), str(out / "SHA256SUMS")).stderr


def test_a_second_run_replaces_the_first_whole(project, keys, tmp_path, capsys):
    out = tmp_path / "attest"
    assert _attest(project, keys, out, "--no-sigstore") == 0
    (out / "spark_client-1.3.0.cdx.json").write_text("{}")  # an older build's file: golive's, but stale
    assert _attest(project, keys, out, "--no-sigstore") == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(set(BUILT) - {"SHA256SUMS.asc"})
    assert [p.name for p in tmp_path.iterdir()] == ["attest"]  # no staging folder left beside it


@pytest.mark.parametrize("case, args, error", [
    ("bad tag", ["--tag", "v1.4"], "--tag: '1.4' is not a SemVer 2.0 version"),
    ("unreadable key", ["--key", "/nonexistent/key.pem"], "--key: "),
    ("missing gpg key", ["--gpg-key", "nobody@example.invalid"], "--gpg-key: no secret key 'nobody@example.invalid'"),
    ("no project", ["--project", "/nonexistent"], "--project: /nonexistent has no pyproject.toml"),
    ("attach without repository", ["--attach"], "--repository: which repository"),
])
def test_bad_input_is_one_line_naming_the_field_and_nothing_is_written(
        project, keys, gpg, tmp_path, capsys, monkeypatch, case, args, error):
    monkeypatch.delenv("GITHUB_REPOSITORY", raising=False)
    out = tmp_path / "attest"
    assert _attest(project, keys, out, "--no-sigstore", *args) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.startswith(f"golive: {error}") and captured.err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


def test_an_out_folder_holding_other_files_is_refused_and_left_alone(project, keys, tmp_path, capsys):
    out = tmp_path / "dist"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    assert _attest(project, keys, out, "--no-sigstore") == 2
    assert capsys.readouterr().err == (f"golive: --out {out}: notes.txt: not a file golive attest makes; "
                                       f"--out must be its own folder\n")
    assert [p.name for p in out.iterdir()] == ["notes.txt"]


@pytest.fixture
def attached(project, keys, gpg, github, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("GITHUB_TOKEN", github.token)
    github.tags.add("v1.4.0")
    options = ["--repository", github.repository, "--api-url", github.url]
    out = tmp_path / "attest"
    assert _attest(project, keys, out, "--no-sigstore", "--gpg-key", gpg.fingerprint, "--attach", *options) == 0
    capsys.readouterr()
    return out, options


def _verify(keys, options, *extra) -> int:
    return main(["evidence", "verify", "--release", "v1.4.0", "--key", str(keys[1]), *options, *extra])


def test_attach_puts_every_file_on_the_release_and_verify_release_reads_them_back(
        attached, keys, github, gpg, capsys):
    out, options = attached
    release = github.release_of("v1.4.0")
    assets = {a.name: a for a in github.assets.values() if a.release_id == release["id"]}
    assert sorted(assets) == BUILT
    assert all(assets[name].data == (out / name).read_bytes() for name in BUILT)
    assert assets["spark_client-1.4.0.cdx.json"].content_type == "application/vnd.cyclonedx+json"
    assert assets["SHA256SUMS.asc"].content_type == "application/pgp-signature"

    assert _verify(keys, options, "--gpg-key", gpg.fingerprint) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[0] == f"downloaded 7 assets of {github.repository} v1.4.0"
    assert printed[1] == f"GPG: SHA256SUMS.asc signed by {gpg.fingerprint}"
    assert printed[2].startswith(f"{github.repository} v1.4.0: verifies: 7 files, 2 signatures checked")
    assert set(github.download_authorizations) == {None}  # storage never saw the token


def test_attach_under_a_tag_the_build_is_not_of_attaches_nothing(project, keys, github, tmp_path, capsys):
    github.tags.add("v1.3.0")
    options = ["--repository", github.repository, "--api-url", github.url]
    assert _attest(project, keys, tmp_path / "attest", "--no-sigstore", "--attach", "--tag", "v1.3.0", *options) == 1
    assert "FAIL --tag v1.3.0: the provenance is of 1.4.0" in capsys.readouterr().out
    assert github.release_of("v1.3.0") is None and not github.assets


def test_attesting_again_replaces_only_what_a_new_signature_changed_and_says_so(
        attached, project, keys, gpg, github, capsys):
    out, options = attached
    before = {a.name: a.data for a in github.assets.values()}
    assert main(["attest", "--project", str(project), "--out", str(out), "--key", str(keys[0]), "--no-sigstore",
                 "--gpg-key", gpg.fingerprint, "--attach", *options]) == 0
    printed = capsys.readouterr().out.splitlines()
    actions = {line.split()[1].rstrip(":"): line.split()[0] for line in printed
               if line.startswith("  ") and ": " in line}
    # The wheel and the SBOM are the same bytes (SOURCE_DATE_EPOCH); setuptools stamps the sdist's
    # files with the time it wrote them, and the provenance's times and every signature are new.
    changed = ["SHA256SUMS", "SHA256SUMS.asc", "spark_client-1.4.0.intoto.jsonl", "spark_client-1.4.0.tar.gz"]
    assert actions == {name: "replaced" if name in changed else "skipped" for name in BUILT}
    replaced = next(line for line in printed if "replaced spark_client-1.4.0.intoto.jsonl" in line)
    assert "→" in replaced and ": other bytes" in replaced  # the old and the new digest, and why
    after = {a.name: a.data for a in github.assets.values()}
    assert sorted(after) == BUILT and after == {name: (out / name).read_bytes() for name in BUILT}
    assert [name for name in BUILT if after[name] != before[name]] == changed


def _tampered(asset: str, data: bytes) -> bytes:
    if asset.endswith(".intoto.jsonl"):  # a statement with another subject digest, the signature kept
        import base64
        envelope = json.loads(data)
        statement = json.loads(base64.b64decode(envelope["payload"]))
        statement["subject"][0]["digest"]["sha256"] = "0" * 64
        return (json.dumps({**envelope, "payload": base64.b64encode(json.dumps(statement).encode()).decode()})
                + "\n").encode()
    return data.replace(b"1.4.0", b"1.4.1", 1) if asset != "SHA256SUMS" else data.replace(b"0", b"1", 1)


@pytest.mark.parametrize("asset, reason", [
    ("spark_client-1.4.0.cdx.json", "spark_client-1.4.0.cdx.json: does not match SHA256SUMS"),
    ("SHA256SUMS", "SHA256SUMS.asc: GPG: BAD signature"),
    ("spark_client-1.4.0.intoto.jsonl", "spark_client-1.4.0.intoto.jsonl: no signature verifies with key"),
])
def test_a_tampered_asset_fails_verify_release_with_its_reason(attached, keys, github, gpg, capsys, asset, reason):
    _, options = attached
    github.tamper("v1.4.0", asset, _tampered(asset, github.asset_named("v1.4.0", asset).data))
    assert _verify(keys, options, "--gpg-key", gpg.fingerprint) == 1
    printed = capsys.readouterr().out.splitlines()
    assert any(line.startswith(f"FAIL {reason}") for line in printed), printed
    assert printed[-1].startswith(f"{github.repository} v1.4.0: does NOT verify")


def test_verify_release_refuses_a_bad_tag_in_one_line(keys, capsys):
    assert main(["evidence", "verify", "--release", "latest", "--key", str(keys[1]), "--repository", "a/b"]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == "golive: --release: 'latest' is not a SemVer 2.0 version " \
                                                  "(MAJOR.MINOR.PATCH[-pre][+build])\n"


def test_a_file_added_with_the_signature_removed_fails_verify_release_without_a_gpg_key(
        attached, keys, github, capsys):
    import hashlib

    _, options = attached
    release = github.release_of("v1.4.0")
    del github.assets[github.asset_named("v1.4.0", "SHA256SUMS.asc").id]
    github._add(Asset(github._id(), release["id"], "evil-1.4.0-py3-none-any.whl", b"evil", "application/zip"))
    github.tamper("v1.4.0", "SHA256SUMS", github.asset_named("v1.4.0", "SHA256SUMS").data
                  + f"{hashlib.sha256(b'evil').hexdigest()}  evil-1.4.0-py3-none-any.whl\n".encode())
    assert _verify(keys, options) == 1
    printed = capsys.readouterr().out.splitlines()
    assert "FAIL SHA256SUMS.asc: missing (a GPG signature was asked for)" in printed
    assert "FAIL evil-1.4.0-py3-none-any.whl: no signature by the key vouches for it (not a subject of the signed " \
           "provenance, not in the signed manifest)" in printed
    assert "GPG: SHA256SUMS is not signed" in printed
    assert _verify(keys, options, "--allow-unsigned-checksums") == 1  # the added file still fails


def test_one_releases_signed_files_do_not_pass_as_another_release(attached, keys, github, capsys):
    _, options = attached
    old = github.release_of("v1.4.0")
    copy = {**old, "id": github._id(), "tag_name": "v1.5.0"}
    github.releases[copy["id"]] = copy
    for asset in [a for a in github.assets.values() if a.release_id == old["id"]]:
        github._add(Asset(github._id(), copy["id"], asset.name, asset.data, asset.content_type))
    assert main(["evidence", "verify", "--release", "v1.5.0", "--key", str(keys[1]), *options]) == 1
    assert "FAIL spark_client-1.4.0.intoto.jsonl: its statement is of release 1.4.0, not of 1.5.0" in \
        capsys.readouterr().out.splitlines()


def test_a_hostile_answer_from_github_is_one_fail_line_never_a_traceback(keys, github, monkeypatch, capsys):
    monkeypatch.setenv("GITHUB_TOKEN", github.token)
    github.hostile[("GET", "/repos/spark/trading/releases/tags/")] = (
        200, b"[" * 100_000 + b"]" * 100_000, {"content-type": "application/json"})
    assert _verify(keys, ["--repository", github.repository, "--api-url", github.url]) == 1
    captured = capsys.readouterr()
    assert captured.out.splitlines() == ["FAIL GET release of v1.4.0: HTTP 200 but not a release object",
                                         f"{github.repository} v1.4.0: does NOT verify (its assets could not be read)"]
    assert "Traceback" not in captured.err


def test_the_build_and_the_sbom_tool_see_none_of_golives_secrets(project, monkeypatch):
    from tasks.distributions import build_environment

    secrets = ["GITHUB_TOKEN", "GOLIVE_GPG_PASSPHRASE", "GOLIVE_SIGNING_KEY_PASSPHRASE", "PYPI_API_TOKEN",
               "DB_PASSWORD", "AWS_SECRET_ACCESS_KEY"]
    for name in secrets:
        monkeypatch.setenv(name, "s3cret")
    env = build_environment(project)
    assert not set(secrets) & set(env) and env["PATH"] and env["SOURCE_DATE_EPOCH"] == "1767225600"


def test_a_requirement_not_installed_here_fails_the_build_unless_an_incomplete_sbom_is_allowed(
        project, keys, tmp_path, capsys):
    other = tmp_path / "project"
    other.mkdir()
    (other / "spark_client.py").write_text((project / "spark_client.py").read_text())
    (other / "pyproject.toml").write_text((project / "pyproject.toml").read_text().replace(
        '"httpx>=0.27"', '"httpx>=0.27", "spark-not-installed-here>=1"'))
    out = tmp_path / "attest"
    assert _attest(other, keys, out, "--no-sigstore") == 1
    printed = capsys.readouterr().out.splitlines()
    assert printed[0] == ("FAIL the SBOM would leave out spark-not-installed-here: required by the project but not "
                          "installed where golive runs (install them there, or --allow-incomplete-sbom)")
    assert not out.exists()
    assert _attest(other, keys, out, "--no-sigstore", "--allow-incomplete-sbom") == 0
    assert "; INCOMPLETE: spark-not-installed-here not installed here, left out" in capsys.readouterr().out
