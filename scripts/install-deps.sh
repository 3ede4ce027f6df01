#!/bin/sh
# SPDX-License-Identifier: MIT
# Install the Debian packages that building and testing vgpu need.
# Idempotent and quiet when everything is there; run as root on Debian 12.
# usage: install-deps.sh [build|test|fuzz]   (default: test, which includes build)
set -eu

build_pkgs="gcc make meson ninja-build pkg-config python3 libsqlite3-dev libjansson-dev libxen-dev libmicrohttpd-dev"
test_pkgs="libcmocka-dev sqlite3 jq util-linux python3-prometheus-client python3-yaml curl rpm cpio"

# The guest driver is built against the headers of the kernel the VM
# tests boot (scripts/guest-kernel.sh).
guest_headers() { echo "linux-headers-$("$(dirname "$0")/guest-kernel.sh")"; }

case "${1:-test}" in
build) want="$build_pkgs" ;;
test) want="$build_pkgs $test_pkgs $(guest_headers)" ;;
fuzz) want="$build_pkgs $test_pkgs clang" ;;
*) echo "usage: $0 [build|test|fuzz]" >&2; exit 2 ;;
esac

missing=""
for p in $want; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
		missing="$missing $p"
	fi
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	echo "vgpu: missing packages:$missing" >&2
	echo "vgpu: run 'make deps' as root, or: apt-get install$missing" >&2
	exit 1
fi
echo "vgpu: installing$missing" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null
