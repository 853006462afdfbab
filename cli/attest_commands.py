"""`golive attest`: a build's SBOM, signed provenance and checksums, verified, and (with
`--attach`) attached to its GitHub release; and `golive evidence verify --release`, which reads a
release's assets back from GitHub and checks them against each other."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

from golive.validation import escape_line

__all__ = ["add_parsers", "add_release_options", "cmd_attest", "release_tag_option", "verify_release"]

DEFAULT_OUT = "dist/attest"


class _Refused(Exception):
    """A bad argument or input: one line on stderr, exit 2."""


def _refusing(command):
    """`command` with its refusals as the shell's: one line on stderr, exit 2."""
    def run(*args) -> int:
        try:
            return command(*args)
        except _Refused as exc:
            print(f"golive: {exc}", file=sys.stderr)
            return 2
    return run


def _github_settings(args: argparse.Namespace):
    """process.github from --config, else --repository and --api-url (GitHub Actions' own
    GITHUB_REPOSITORY and GITHUB_API_URL by default)."""
    from pydantic import ValidationError

    from golive.settings import GitHubSettings, SettingsError, load_settings, settings_error

    if args.config:
        try:
            github = load_settings(args.config, release="0.0.0").process.github
        except SettingsError as exc:
            raise _Refused(str(exc)) from None
        if github is None:
            raise _Refused(f"{escape_line(args.config)}: process.github is not set (the repository to attach to)")
        return github
    repository = args.repository or os.environ.get("GITHUB_REPOSITORY")
    if not repository:
        raise _Refused("--repository: which repository (owner/name)? Or give --config with process.github")
    fields = {"repository": repository, **({"api_url": url} if (url := args.api_url or os.environ.get(
        "GITHUB_API_URL")) else {})}
    try:
        return GitHubSettings(**fields)
    except ValidationError as exc:
        message = str(settings_error(exc, "process.github"))
        raise _Refused(message.replace("process.github.repository", "--repository")
                       .replace("process.github.api_url", "--api-url")) from None


def _signing_key(path: str | None):
    from golive.settings import SigningSettings
    from golive.signing import SigningError, SigningKey

    try:
        return SigningKey.from_file(path or SigningSettings().key_path)
    except SigningError as exc:
        raise _Refused(f"--key: {exc}") from None


def _git(project: Path) -> dict | None:
    """The project's commit, branch and remote (without credentials), when it is a work tree."""
    from tasks.git_repo import GitError, read_git_state

    try:
        state = read_git_state.fn(str(project), "0.0.0")
    except GitError:
        return None
    return {"url": state.remote_url, "branch": state.branch, "commit": state.commit} if state.commit else None


def _print_report(report, where: str, key) -> int:
    from golive.verify import describe_key, verdict

    for note in report.notes:
        print(f"NOTE {escape_line(note)}")
    for problem in report.problems:
        print(f"FAIL {problem}")
    print(f"{where}: {verdict(report)}: {report.files} files, {report.signatures} signatures checked "
          f"({describe_key(key)}; .asc files with gpg)")
    return 0 if report.ok else 1


def _print_attached(report) -> None:
    print(f"release {escape_line(report.tag)} of {escape_line(report.repository)} (id {report.release_id}"
          f"{', made now' if report.release_created else ''}):")
    for asset in report.assets:
        change = f" ({asset.old_sha256[:12]}… → {asset.sha256[:12]}…)" if asset.action == "replaced" and \
            asset.old_sha256 and asset.sha256 else ""
        print(f"  {asset.action:<8} {escape_line(asset.name)}{change}: {escape_line(asset.reason)}")


def _gpg_fingerprint(key: str | None, secret: bool = True) -> str | None:
    from tasks.gpg import GpgError, fingerprint_of

    if not key:
        return None
    try:
        return fingerprint_of(key, secret)
    except GpgError as exc:
        raise _Refused(str(exc)) from None


def cmd_attest(args: argparse.Namespace) -> int:
    """Every input checked before anything is built or written, then build, sign, verify, attach."""
    from cli.prefect_env import configure_prefect

    project, out = Path(args.project), Path(args.out)
    try:
        has_pyproject = (project / "pyproject.toml").is_file()
    except OSError as exc:  # a name too long, a loop of links
        raise _Refused(f"--project: {escape_line(project)[:120]}: {exc.strerror}") from None
    if not has_pyproject:
        raise _Refused(f"--project: {escape_line(project)} has no pyproject.toml")
    key = _signing_key(args.key)
    from tasks.gpg import GPG_KEY_ENV

    fingerprint = _gpg_fingerprint(args.gpg_key or os.environ.get(GPG_KEY_ENV))
    tag = release_tag_option("--tag", args.tag) if args.tag else None
    github = _github_settings(args) if args.attach else None
    configure_prefect()
    from flows.attest import attach_to_release, attest_build, check_out
    from tasks.distributions import BuildError
    from tasks.github import GitHubError
    from tasks.gpg import GpgError

    try:
        check_out(out)
    except (ValueError, OSError) as exc:
        raise _Refused(f"--out {escape_line(out)}: {exc}") from None
    try:
        made, report = attest_build(project, out, key, fingerprint, sigstore=not args.no_sigstore, git=_git(project),
                                    allow_incomplete_sbom=args.allow_incomplete_sbom)
    except (BuildError, GpgError, RuntimeError, ValueError, OSError) as exc:
        print(f"FAIL {escape_line(exc)}")
        print(f"{escape_line(out)}: nothing written (the build stopped)")
        return 1
    print(f"built {made['name']} {made['version']} into {escape_line(out)}:")
    for name in made["files"]:
        print(f"  {escape_line(name)}")
    sbom = made["sbom"]
    print(f"SBOM: {sbom['name']}, {sbom['components']} components, {sbom['validation']}"
          + (f"; INCOMPLETE: {', '.join(sbom['missing'])} not installed here, left out" if sbom["missing"] else ""))
    print(f"provenance: {made['provenance']} (subjects: {', '.join(made['subjects'])}), key {made['keyid'][:16]}…")
    keyless = made["sigstore"]
    print(f"sigstore: {keyless['bundle']}" if keyless["signed"]
          else f"sigstore: not signed keyless: {escape_line(keyless['reason'])[:300]}; the local key's DSSE stands")
    print(f"GPG: SHA256SUMS.asc by {made['gpg']}" if made["gpg"] else "GPG: not signed (no --gpg-key)")
    code = _print_report(report, escape_line(out), key.public_key)
    if code or github is None:
        return code
    if tag is not None and tag != f"v{made['version']}":
        print(f"FAIL --tag {tag}: the provenance is of {made['version']}, so the release {tag} would not verify; "
              f"not attached")
        return 1
    tag = tag or f"v{made['version']}"
    with tempfile.TemporaryDirectory(prefix="golive-attach-") as staging:
        files = {name: out / name for name in made["files"] if name != "SHA256SUMS" and not name.endswith(".asc")}
        try:
            attached = attach_to_release(github, tag, files, Path(staging), fingerprint,
                                         prior_signatures={"SHA256SUMS": out / "SHA256SUMS.asc"})
        except (GitHubError, GpgError, OSError) as exc:
            print(f"FAIL attach: {escape_line(exc)}")
            return 1
    _print_attached(attached)
    for problem in attached.problems:
        print(f"FAIL {escape_line(problem)}")
    return 1 if attached.problems else 0


def release_tag_option(option: str, text: str) -> str:
    """A release's tag from a version (1.4.0) or a tag (v1.4.0); _Refused naming `option`."""
    from golive.validation import parse_release

    try:
        return f"v{parse_release(text.removeprefix('v'))}"
    except ValueError as exc:
        raise _Refused(f"{option}: {exc}") from None


def _verify_release(args: argparse.Namespace, public_key) -> int:
    """`golive evidence verify --release TAG`: every asset of the release downloaded into a
    temporary folder and checked there (golive.verify.verify_release_folder)."""
    from cli.prefect_env import configure_prefect

    if args.from_prefect:
        raise _Refused("--from-prefect: reads a folder's published head; with --release give --expect-head")
    tag = release_tag_option("--release", args.release)
    github = _github_settings(args)
    expected = _gpg_fingerprint(args.gpg_key, secret=False)
    configure_prefect()
    from flows.attest import gpg_check
    from golive.verify import verify_release_folder
    from tasks.github import GitHubError
    from tasks.github_releases import ReleaseAssets

    where = f"{escape_line(github.repository)} {tag}"
    signers: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="golive-release-") as folder:
        try:
            names = ReleaseAssets(github, tag).download_all(Path(folder))
        except (GitHubError, OSError) as exc:
            print(f"FAIL {escape_line(exc)}")
            print(f"{where}: does NOT verify (its assets could not be read)")
            return 1
        report = verify_release_folder(folder, public_key, args.sigstore_identity, args.sigstore_issuer,
                                       args.expect_head, gpg_check(expected, signers),
                                       require_signature=not args.allow_unsigned_checksums,
                                       release=tag.removeprefix("v"))
    print(f"downloaded {len(names)} assets of {where}")
    for name, fingerprint in sorted(signers.items()):
        print(f"GPG: {escape_line(name)} signed by {fingerprint}"
              + ("" if expected else " (a key your keyring trusts; --gpg-key names the one expected)"))
    if "SHA256SUMS.asc" not in names:
        print("GPG: SHA256SUMS is not signed" + (" (allowed by --allow-unsigned-checksums)"
                                                 if args.allow_unsigned_checksums else ""))
    return _print_report(report, where, public_key)


verify_release = _refusing(_verify_release)


def add_release_options(p: argparse.ArgumentParser) -> None:
    """The options of `evidence verify --release`: where the release is, and whose GPG key."""
    p.add_argument("--repository", help="owner/name on GitHub (default $GITHUB_REPOSITORY, or --config's)")
    p.add_argument("--api-url", help="GitHub's API (default $GITHUB_API_URL, else https://api.github.com)")
    p.add_argument("--config", help="golive settings whose process.github names the repository and the token")
    p.add_argument("--gpg-key", help="with --release: the key the .asc signatures must be made by "
                                     "(default: a key the keyring trusts fully)")
    p.add_argument("--allow-unsigned-checksums", action="store_true",
                   help="with --release: a release without SHA256SUMS.asc may verify")


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("attest", help="build the project; its SBOM, signed provenance and checksums, verified "
                                      "(--attach: on its GitHub release)")
    p.add_argument("--project", default=".", help="the project's folder (with its pyproject.toml)")
    p.add_argument("--out", default=DEFAULT_OUT, help=f"golive's own folder for the files (default {DEFAULT_OUT}; "
                                                      f"replaced whole by each run)")
    p.add_argument("--key", help="the signing key (default: golive keys init's)")
    p.add_argument("--gpg-key", help="sign SHA256SUMS with this GnuPG key, a fingerprint or user id "
                                     "(default $GOLIVE_GPG_KEY; the keyring is $GNUPGHOME's)")
    p.add_argument("--no-sigstore", action="store_true", help="do not try keyless signing")
    p.add_argument("--allow-incomplete-sbom", action="store_true",
                   help="build even when requirements of the project are not installed where golive runs "
                        "(the SBOM, which describes that environment, leaves them out and says so)")
    p.add_argument("--attach", action="store_true", help="attach the files to the GitHub release of --tag")
    p.add_argument("--tag", help="the release's tag (default v<version>)")
    p.add_argument("--repository", help="owner/name on GitHub (default $GITHUB_REPOSITORY, or --config's)")
    p.add_argument("--api-url", help="GitHub's API (default $GITHUB_API_URL, else https://api.github.com)")
    p.add_argument("--config", help="golive settings whose process.github names the repository and the token")
    p.set_defaults(func=_refusing(cmd_attest))
