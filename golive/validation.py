"""Input that names things on disk or in a cluster: checked once, refused in one line.

A release string becomes a folder name (`evidence/v<release>`), a git tag and a deployment
name, so it is a SemVer 2.0 version and nothing else (https://semver.org/#semantic-versioning-200).
"""

from __future__ import annotations

import os
import re
import string
import unicodedata
from collections.abc import Iterable, Mapping
from pathlib import Path
from urllib.parse import parse_qsl, quote, urlsplit, urlunsplit

__all__ = [
    "MAX_RELEASE_LENGTH", "REDACTED", "TAG_MESSAGE_FIELDS", "check_output_path", "check_service_url",
    "check_tag_message", "error_line", "escape_line", "http_auth", "names_a_secret", "one_line", "parse_release",
    "redacted", "without_credentials", "without_credentials_in", "without_environment_secrets",
    "without_secrets", "write_whole",
]

# The grammar of semver.org, in ASCII only (`\d` would also match other scripts' digits).
_NUMBER = r"(?:0|[1-9][0-9]*)"
_PRE_PART = r"(?:0|[1-9][0-9]*|[0-9]*[A-Za-z-][0-9A-Za-z-]*)"
_SEMVER = re.compile(
    rf"{_NUMBER}\.{_NUMBER}\.{_NUMBER}"
    rf"(?:-{_PRE_PART}(?:\.{_PRE_PART})*)?"
    r"(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?"
)
# SemVer sets no limit; a folder name and a git tag do.
MAX_RELEASE_LENGTH = 128
TAG_MESSAGE_FIELDS = ("green", "total", "release")


_SHORT_ESCAPES = {"\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def escape_line(text: object) -> str:
    """`text` as one line of a record: line breaks, control and format characters (and the
    backslash, so an escape cannot be faked) written as Python-style escapes; other text as is."""
    out = []
    for char in str(text):
        if char in _SHORT_ESCAPES:
            out.append(_SHORT_ESCAPES[char])
        elif unicodedata.category(char)[0] == "C" or unicodedata.category(char) in ("Zl", "Zp"):
            code = ord(char)
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}")
        else:
            out.append(char)
    return "".join(out)


def error_line(exc: BaseException) -> str:
    """An exception as the one line a record or a state message carries: `RuntimeError: what`."""
    words = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {words}" if words else type(exc).__name__


def one_line(text: object, limit: int = 200) -> str:
    """`text` quoted with its control characters as escapes (never a line break), cut to `limit`."""
    shown = repr(str(text))
    return shown if len(shown) <= limit else shown[: limit - 1] + "…"


def parse_release(text: str) -> str:
    """The release version in `text` (surrounding white space dropped); ValueError in one line
    when it is not a SemVer 2.0 version such as 1.4.0, 2.0.0-rc.1 or 1.4.0+build.7."""
    if not isinstance(text, str):
        raise ValueError(f"{one_line(text)} is not a SemVer 2.0 version (MAJOR.MINOR.PATCH[-pre][+build])")
    version = text.strip()
    if len(version) > MAX_RELEASE_LENGTH:
        raise ValueError(f"{one_line(version, 40)} is longer than {MAX_RELEASE_LENGTH} characters")
    if not _SEMVER.fullmatch(version):
        raise ValueError(f"{one_line(version)} is not a SemVer 2.0 version (MAJOR.MINOR.PATCH[-pre][+build])")
    return version


MAX_TAG_WIDTH = 200


def check_tag_message(template: str) -> str:
    """`template` when it formats with the closing's fields only ({green}, {total}, {release})."""
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise ValueError(f"{one_line(template)}: {exc}") from None
    for _, field, spec, conversion in parsed:
        if field is None:
            continue
        if field not in TAG_MESSAGE_FIELDS:
            raise ValueError(f"{{{field}}} is not a field of the message (use {{green}}, {{total}}, {{release}})")
        if any(int(number) > MAX_TAG_WIDTH for number in re.findall(r"\d+", spec or "")):
            raise ValueError(f"{{{field}}}: a width or precision over {MAX_TAG_WIDTH} (a tag's subject is one line)")
        if spec or conversion:
            sample = {"green": 8, "total": 8, "release": "1.4.0"}
            try:
                template.format(**sample)
            except (ValueError, TypeError) as exc:
                raise ValueError(f"{{{field}}}: {exc}") from None
    return template


def check_output_path(path: str | os.PathLike, folder: bool = False) -> Path:
    """`path` when something can be written there: a file (or, with `folder`, a folder, made if
    absent) whose parent is an existing folder this process may write in. ValueError in one line
    otherwise, before anything is written; a missing parent is not made (a typo would make a tree)."""
    target = Path(path)
    shown = escape_line(target)
    try:
        return _checked_output_path(target, shown, folder)
    except OSError as exc:  # a name too long, a loop of links: the system's words for it
        raise ValueError(f"{shown[:120]}: {exc.strerror or type(exc).__name__}") from None


def _checked_output_path(target: Path, shown: str, folder: bool) -> Path:
    parent = target.parent
    if not parent.is_dir():
        reason = "does not exist" if not parent.exists() else "is not a folder"
        raise ValueError(f"{shown}: {escape_line(parent)} {reason}")
    if folder and target.exists() and not target.is_dir():
        raise ValueError(f"{shown}: not a folder")
    if not folder and target.is_dir():
        raise ValueError(f"{shown}: a folder; name a file to write")
    if not os.access(target if target.exists() else parent, os.W_OK):
        raise ValueError(f"{shown}: not writable")
    return target


def write_whole(path: str | os.PathLike, data: str | bytes, mode: int = 0o644) -> None:
    """Write `data` (text as UTF-8) to `path` whole or not at all: into a new file beside it
    (mkstemp: created exclusively, never through a link), renamed over `path`, so a symbolic link
    there is replaced rather than followed. OSError when the folder refuses; nothing is left behind."""
    import tempfile

    target = Path(path)
    content = data.encode("utf-8") if isinstance(data, str) else data
    fd, partial = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".partial")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(content)
        os.chmod(partial, mode)
        os.replace(partial, target)
    except BaseException:
        Path(partial).unlink(missing_ok=True)
        raise


def without_credentials(url: str) -> str:
    """`url` with any user and password (or token) taken out, for recording; scp-style git
    remotes (`git@host:owner/repo`) name a login, not a secret, and stay as they are."""
    parts = urlsplit(url)
    if not parts.scheme or "@" not in parts.netloc:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=host))


def check_service_url(url: str) -> str:
    """`url` when it is http(s) with a host and no credentials in it (they would be recorded
    wherever the settings are); the error never repeats the URL, which may hold a secret."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("expected an http:// or https:// URL with a host")
    if "@" in parts.netloc:
        raise ValueError("credentials in the URL are refused: name a Secret block instead")
    try:
        port = parts.port
    except ValueError:
        port = 0
    if port == 0 or (port is None and parts.netloc.endswith(":")):
        raise ValueError("expected the URL's port to be a number from 1 to 65535")
    parameters = [parts.query, parts.fragment, *parts.path.split(";")[1:]]  # ?a=1, #a=1, /p;a=1
    if any(_names_a_credential(key) for text in parameters for key, _ in parse_qsl(text, True)):
        raise ValueError("a secret in the URL's query or parameters is refused: name a Secret block instead")
    return url


def http_auth(secret: object, where: str) -> tuple[dict[str, str], tuple[str, str] | None]:
    """Headers and a basic-auth pair from a Secret block's value: a bearer token (a string or
    {"token": …}), or {"username": …, "password": …} for basic auth. ValueError naming `where` (the
    setting and its block), never the value."""
    if isinstance(secret, dict) and {"username", "password"} <= secret.keys():
        return {}, (str(secret["username"]), str(secret["password"]))
    token = secret.get("token") if isinstance(secret, dict) else secret
    if isinstance(token, str) and token.strip() and "\n" not in token.strip():
        return {"Authorization": f"Bearer {token.strip()}"}, None
    raise ValueError(f"{where}: expected a bearer token, {{\"token\": …}} "
                     f"or {{\"username\": …, \"password\": …}}")


def _names_a_credential(key: str) -> bool:
    """A URL parameter's name that carries a credential: one that names a secret, or any of whose
    words does (X-Amz-Signature, subscription-key, access_key, sig)."""
    return names_a_secret(key) or bool(_QUERY_SECRET_WORDS & set(_words(key)))


REDACTED = "***"
_SECRET_WORDS = frozenset({"token", "password", "passphrase", "secret", "authorization", "apikey", "private_key",
                           "api_key", "passwd", "pwd", "jwt", "otp", "cookie", "credential", "session_id"})
# Query parameters that carry a credential beside the words above (`?key=`, `?sig=`, `?auth=`).
_QUERY_SECRET_WORDS = frozenset({"key", "auth", "sig", "signature"})
# A key ending in one of these names where a secret is kept (a block, a variable), not the secret.
_REFERENCE_WORDS = frozenset({"block", "env", "file", "path", "name"})
# scheme://userinfo@ in free text; the userinfo may hold an unencoded `@`, never a `/`, `?`, `#` or space.
_URL_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/?#\s]*@")


def _words(key: object) -> list[str]:
    """`apiKey`, `api-key`, `API_KEY` → ["api", "key"]."""
    return [w for w in re.split(r"[^a-z0-9]+", re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", str(key)).lower()) if w]


def names_a_secret(key: object) -> bool:
    words = _words(key)
    if not words or words[-1] in _REFERENCE_WORDS:
        return False
    words = [w[:-1] if w.endswith("s") and w[:-1] in _SECRET_WORDS | {"key"} else w for w in words]  # tokens, api_keys
    pairs = {f"{a}_{b}" for a, b in zip(words, words[1:])}
    return bool(_SECRET_WORDS & (set(words) | pairs))


def _masked_urls(text: str) -> str:
    return _URL_USERINFO.sub(lambda m: f"{m.group(1)}{REDACTED}@", text)


def redacted(data: object) -> object:
    """`data` (settings, a record, a message) safe to write or show: every URL's user and password
    masked as `***`, and every value under a key that names a secret (token, password, passphrase,
    secret, authorization, api_key, jwt, cookie, credential, session_id, otp; plurals too) masked
    whole. Keys that name where a secret is kept (`*_block`, `*_env`, `*_file`, `*_path`) keep their
    value. A new object; `data` is untouched."""
    if isinstance(data, dict):
        return {key: REDACTED if names_a_secret(key) and value not in (None, "") else redacted(value)
                for key, value in data.items()}
    if isinstance(data, (list, tuple)):
        return type(data)(redacted(item) for item in data)
    if isinstance(data, str):
        return _masked_urls(data)
    return data


def without_secrets(text: str, secrets: Iterable[str]) -> str:
    """`text` with each of `secrets` masked, as written and as a URL quotes it (longest first, so a
    secret inside another is masked after it), and URL credentials taken out."""
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        text = text.replace(secret, REDACTED).replace(quote(secret, safe=""), REDACTED)
    return without_credentials_in(text)


def without_environment_secrets(text: str, environ: Mapping[str, str]) -> str:
    """`text` (a command's output) with the value of every variable of `environ` whose name names a
    secret (GITHUB_TOKEN, GOLIVE_GPG_PASSPHRASE, …) masked, and URL credentials taken out."""
    return without_secrets(text, (value for name, value in environ.items() if names_a_secret(name) and len(value) >= 6))


def without_credentials_in(text: str) -> str:
    """`text` (git's or an HTTP library's own words) with the credentials taken out of every URL it
    quotes, as `without_credentials` takes them out of one."""
    return _URL_USERINFO.sub(lambda m: m.group(1), text)
