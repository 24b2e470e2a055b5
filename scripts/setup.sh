#!/bin/sh
# setup.sh — install the Debian packages kura's build and tests need.
#
# Usage: setup.sh [LIST ...]; the lists default to scripts/packages.txt
# (`make bench` adds scripts/packages-bench.txt).  Idempotent: when every package is
# already installed this prints nothing and runs no apt-get at all; otherwise
# it runs `apt-get update` once and installs only the missing packages,
# non-interactively, without recommends.  Works as root (no sudo needed);
# as another user it uses sudo when available.
set -eu

cd "$(dirname "$0")/.."

[ $# -gt 0 ] || set -- scripts/packages.txt
pkgs=$(cat "$@" | sed -e 's/#.*//' | tr -s ' \t' '\n\n' | sed -e '/^$/d')

missing=
for p in $pkgs; do
	status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
	case "$status" in
	*" ok installed") ;;
	*) missing="$missing $p" ;;
	esac
done

[ -z "$missing" ] && exit 0

if [ "$(id -u)" -eq 0 ]; then
	as_root=
elif command -v sudo >/dev/null 2>&1; then
	as_root=sudo
else
	echo "setup: missing Debian packages:$missing" >&2
	echo "setup: run scripts/setup.sh as root to install them" >&2
	exit 1
fi

echo "setup: installing:$missing"
export DEBIAN_FRONTEND=noninteractive
# Wait for a concurrent apt/dpkg (e.g. unattended-upgrades) rather than fail.
$as_root env DEBIAN_FRONTEND=noninteractive \
	apt-get -o DPkg::Lock::Timeout=300 update
# shellcheck disable=SC2086 # word splitting of the list is intended
$as_root env DEBIAN_FRONTEND=noninteractive \
	apt-get -o DPkg::Lock::Timeout=300 install -y --no-install-recommends \
	$missing

# Verify, so a package that apt could not provide is reported here and not
# as a confusing build failure later.
still=
for p in $missing; do
	status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
	case "$status" in
	*" ok installed") ;;
	*) still="$still $p" ;;
	esac
done
if [ -n "$still" ]; then
	echo "setup: still missing after apt-get install:$still" >&2
	exit 1
fi
# Debian starts a freshly installed nginx on port 80 of every interface
# where systemd runs; benchmarks start their own on 127.0.0.1 only.
case " $missing " in
*" nginx "*)
	if command -v systemctl >/dev/null 2>&1 &&
	   systemctl is-enabled nginx >/dev/null 2>&1; then
		$as_root systemctl disable --now nginx >/dev/null 2>&1 || true
		echo "setup: stopped and disabled the nginx service (bench runs its own)"
	fi
	;;
esac
echo "setup: done"
