#!/usr/bin/env bash
# Installs what the tests need (Debian packages and the project with its test extra), then runs them.
# Usage: scripts/test.sh [pytest args]    (CRM_AUDIT_SKIP_SETUP=1 skips the installs)
# Runs ruff and mypy (configured in pyproject.toml) before pytest.
set -uo pipefail
cd "$(dirname "$0")/.."

if [ "${CRM_AUDIT_SKIP_SETUP:-0}" != 1 ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  need=()
  command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need+=(nginx)
  ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
  command -v chromium >/dev/null 2>&1 || need+=(chromium)
  command -v testssl >/dev/null 2>&1 || need+=(testssl.sh)
  if [ ${#need[@]} -gt 0 ]; then
    echo "installing Debian packages: ${need[*]}"
    $SUDO apt-get update -qq || exit 1
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null || exit 1
  fi
  python3 -m pip install -q --disable-pip-version-check "setuptools>=68" wheel || exit 1
  python3 -m pip install -q --disable-pip-version-check -e '.[test]' || exit 1
fi

# linters first: a lint or type error fails the run before the (long) tests start
python3 -m ruff check . || { echo "scripts/test.sh: ruff found problems (ruff check . --fix fixes most)" >&2; exit 1; }
python3 -m mypy || { echo "scripts/test.sh: mypy found type errors (the files are in pyproject.toml [tool.mypy])" >&2; exit 1; }

python3 -m pytest "$@"
rc=$?
if [ "$rc" -eq 5 ]; then
  echo "scripts/test.sh: pytest collected no tests; that is a failure" >&2
  exit 1
fi
exit "$rc"
