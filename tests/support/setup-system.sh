#!/usr/bin/env bash
# The system parts `make test` needs: redis-server, nginx, Chromium and a
# PostgreSQL server, from Debian. Run by `make test` before pytest.
#
# - Installs the missing ones with apt-get, when it runs as root or with
#   passwordless sudo and apt-get exists. Nothing missing: no apt-get at all
#   (this script then only looks, in well under a second).
# - Starts the local PostgreSQL cluster(s) when installed but down (unless
#   PARLEY_TEST_POSTGRES_URL points the tests at another server).
# - Never fails the run: what it cannot provide, it names, and pytest skips
#   the tests that need it with the reason in its summary (CI's
#   PARLEY_TEST_REQUIRE_ALL=1 turns those skips into failures).
# - PARLEY_TEST_WITHOUT=nginx,chromium,... treats those parts as absent here
#   and in the tests (see tests/support/requirements.py), to try the skip
#   path without uninstalling anything.
set -uo pipefail

without=" ${PARLEY_TEST_WITHOUT:-} "
without=${without//,/ }
left_out() { [[ "$without" == *" $1 "* ]]; }
say() { echo "setup-system: $*"; }

present() {
  case "$1" in
    redis-server) command -v redis-server >/dev/null ;;
    nginx) command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] ;;
    chromium) [ -x /usr/bin/chromium ] ;;
    postgresql) command -v pg_ctlcluster >/dev/null || [ -x /usr/bin/pg_ctlcluster ] ;;
  esac
}

# How to act as root: directly, through passwordless sudo, or not at all.
if [ "$(id -u)" = 0 ]; then
  as_root=()
elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
  as_root=(sudo -n)
else
  as_root=(none)
fi

missing=()
for part in redis-server nginx chromium postgresql; do
  if left_out "$part"; then
    say "$part: left out by PARLEY_TEST_WITHOUT; its tests will skip"
  elif ! present "$part"; then
    missing+=("$part")
  fi
done

if [ ${#missing[@]} -gt 0 ]; then
  if [ "${as_root[*]-}" = none ]; then
    say "missing: ${missing[*]}; not root and no passwordless sudo, so not installing."
    say "  their tests will skip; install with: sudo apt-get install -y ${missing[*]}"
  elif ! command -v apt-get >/dev/null; then
    say "missing: ${missing[*]}; no apt-get here, so not installing: their tests will skip."
  else
    say "installing from Debian: ${missing[*]}"
    if "${as_root[@]}" apt-get update -qq &&
       "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive \
         apt-get install -y -qq "${missing[@]}" >/dev/null; then
      say "installed: ${missing[*]}"
    else
      say "apt-get failed for: ${missing[*]}; their tests will skip"
    fi
  fi
fi

# The PostgreSQL tests use a throwaway database on the local server: start it
# if it is installed but down.
if ! left_out postgresql && [ -z "${PARLEY_TEST_POSTGRES_URL:-}" ] && present postgresql &&
   ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
  if [ "${as_root[*]-}" = none ]; then
    say "PostgreSQL is installed but not running, and starting it needs root: its tests will skip"
  else
    for version in $(ls /etc/postgresql 2>/dev/null); do
      say "starting PostgreSQL $version/main"
      "${as_root[@]}" pg_ctlcluster --skip-systemctl-redirect "$version" main start ||
        say "could not start PostgreSQL $version/main: its tests will skip"
    done
  fi
fi
ready=()
for part in redis-server nginx chromium postgresql; do
  left_out "$part" || ! present "$part" || ready+=("$part")
done
say "present: ${ready[*]:-none}"
exit 0
