#!/usr/bin/env bash
# tools/deps.sh PURPOSE [--moto] PACKAGE...: install the Debian packages of one `make deps-PURPOSE` that are
# missing, and with --moto make sure moto_server (Python moto 5) is there. The Makefile names the packages of
# each purpose; nothing is installed when everything is present.
#
# apt's lock: when another apt or dpkg holds it (an unattended upgrade on a fresh machine, another `make deps`),
# this waits for it up to APT_LOCK_WAIT seconds (default 120; 0 fails at once), saying so in one line, then
# fails with one line naming the holder. apt-get update does not wait for its lists lock at all and
# DPkg::Lock::Timeout covers install only, so the wait is done here, around both.
# DEPS_SIMULATE=1 is a dry run that changes nothing: apt-get -s install, no update, no pip.
set -euo pipefail
purpose=${1:?usage: tools/deps.sh PURPOSE [--moto] PACKAGE...}
shift
moto=false
if [[ ${1:-} == --moto ]]; then
  moto=true
  shift
fi
wait_max=${APT_LOCK_WAIT:-120}
simulate=()
[[ ${DEPS_SIMULATE:-} == 1 ]] && simulate=(-s)
say() { echo "make deps-$purpose: $*" >&2; }

missing=()
for p in "$@"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done

# apt_get ARGS...: apt-get, retried while another process holds apt's or dpkg's lock, until wait_max seconds
# from the first wait (one budget for update and install together).
deadline=
apt_get() {
  local out status holder
  while :; do
    status=0
    out=$(DEBIAN_FRONTEND=noninteractive apt-get -qq "$@" 2>&1) || status=$?
    if ((status == 0)); then
      [[ $1 != -s ]] || grep -E '^Inst ' <<<"$out" >&2 || true
      return 0
    fi
    if ! grep -qE 'Could not get lock|Unable to acquire the dpkg frontend lock|Unable to lock (the )?(administration )?directory' <<<"$out"; then
      say "apt-get $* failed:"
      echo "$out" | tail -n 20 >&2
      return "$status"
    fi
    holder=$(grep -oE 'held by process [0-9]+( \([^)]*\))?' <<<"$out" | head -n 1 | sed 's/^held by //')
    holder=${holder:-another process}
    if [[ -z $deadline ]]; then
      deadline=$((SECONDS + wait_max))
      ((wait_max == 0)) || say "apt is locked by $holder; waiting up to ${wait_max}s for it"
    fi
    if ((SECONDS >= deadline)); then
      say "apt is locked by $holder; retry when it finishes (waited ${wait_max}s; APT_LOCK_WAIT sets how long)"
      return 1
    fi
    sleep 2
  done
}

if ((${#missing[@]} > 0)); then
  say "installing ${missing[*]}"
  if ((${#simulate[@]} == 0)); then
    apt_get update
  fi
  apt_get "${simulate[@]}" install -y "${missing[@]}"
fi

if $moto && ! command -v moto_server >/dev/null; then
  say "installing moto_server (pip install 'moto[server]>=5,<6')"
  if [[ ${#simulate[@]} -eq 0 ]]; then
    pip install -q 'moto[server]>=5,<6' || { say "moto_server is missing and could not be installed (pip install 'moto[server]')"; exit 1; }
  fi
fi
