#!/usr/bin/env bash
# Installs what golive needs on a fresh machine: Debian's prometheus, alertmanager, pushgateway, nginx and GnuPG (and
# chromium and zbar-tools, which the UI and operator-card tests use), a project venv, and golive itself with its
# test extras. Safe to run again: it skips what is already there.
# PostgreSQL (for `golive server up --database postgresql`) only when asked: --with-postgres or GOLIVE_POSTGRES=1.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
postgres="${GOLIVE_POSTGRES:-0}"
for arg in "$@"; do
    case "$arg" in
        --with-postgres) postgres=1 ;;
        *) echo "setup: unknown argument $arg (known: --with-postgres)" >&2; exit 2 ;;
    esac
done

# Each Debian package with the binary that proves it is installed.
missing=()
for pair in prometheus:prometheus prometheus-alertmanager:prometheus-alertmanager \
        prometheus-pushgateway:prometheus-pushgateway nginx:nginx chromium:chromium \
        zbar-tools:zbarimg gnupg:gpg; do
    package="${pair%%:*}" bin="${pair#*:}"
    command -v "$bin" >/dev/null 2>&1 || [ -x "/usr/sbin/$bin" ] || [ -x "/usr/bin/$bin" ] || missing+=("$package")
done
if [ "$postgres" = 1 ] && ! compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null; then
    missing+=(postgresql)
fi
if [ "${#missing[@]}" -gt 0 ]; then
    if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "setup: installing ${missing[*]} (Debian packages)" >&2
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    else
        echo "setup: ${missing[*]} missing; install with: sudo apt-get install -y --no-install-recommends ${missing[*]}" >&2
        exit 1
    fi
fi

venv="$root/.venv"
if [ ! -x "$venv/bin/python" ]; then
    echo "setup: creating $venv" >&2
    python3 -m venv "$venv"
fi
stamp="$venv/.golive-installed"
if [ ! -f "$stamp" ] || [ "$root/pyproject.toml" -nt "$stamp" ]; then
    echo "setup: installing golive and its dependencies into .venv" >&2
    # The build backend too: `golive attest` builds the project without build isolation (offline).
    "$venv/bin/python" -m pip install -q --upgrade pip "setuptools>=69"
    "$venv/bin/python" -m pip install -q -e "$root[test]"
    touch "$stamp"
fi
