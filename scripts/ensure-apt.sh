#!/usr/bin/env bash
# Ensure Debian packages are installed:
#
#   scripts/ensure-apt.sh PKG...        # e.g. scripts/ensure-apt.sh zbar-tools
#
# Idempotent and quiet: when every package is already installed (per `dpkg-query -W`) this
# returns at once without touching the network. Otherwise it runs `apt-get update` (only then:
# the package lists may be stale or absent on a fresh machine) and installs the missing ones,
# non-interactively and without recommended packages. Uses sudo when not root.
#
# Prints one status line on stderr; on failure, the tail of apt's log and a non-zero exit.
set -euo pipefail

if [[ $# -eq 0 ]]; then
    echo "usage: $0 PKG..." >&2
    exit 2
fi

installed() {
    # `dpkg-query -W` also lists packages that were removed but not purged; ask for the status.
    [[ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null)" == "installed" ]]
}

missing=()
for pkg in "$@"; do
    installed "$pkg" || missing+=("$pkg")
done

if [[ ${#missing[@]} -eq 0 ]]; then
    echo "ensure-apt: $* already installed" >&2
    exit 0
fi

if ! command -v apt-get >/dev/null; then
    echo "ensure-apt: missing ${missing[*]} and apt-get is not available; install them by hand" >&2
    exit 1
fi

as_root=()
if [[ $(id -u) -ne 0 ]]; then
    if ! command -v sudo >/dev/null; then
        echo "ensure-apt: missing ${missing[*]}; run as root (or install sudo)" >&2
        exit 1
    fi
    as_root=(sudo -n)
fi

log="$(mktemp -t ensure-apt.XXXXXX)"
trap 'rm -f "$log"' EXIT
export DEBIAN_FRONTEND=noninteractive
start=$SECONDS
if ! "${as_root[@]}" apt-get update -q >"$log" 2>&1 \
    || ! "${as_root[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}" >>"$log" 2>&1; then
    echo "ensure-apt: installing ${missing[*]} failed:" >&2
    tail -n 20 "$log" >&2
    exit 1
fi

for pkg in "${missing[@]}"; do
    if ! installed "$pkg"; then
        echo "ensure-apt: $pkg still not installed after apt-get install" >&2
        exit 1
    fi
done
echo "ensure-apt: installed ${missing[*]} in $((SECONDS - start))s" >&2
