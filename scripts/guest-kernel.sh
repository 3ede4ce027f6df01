#!/bin/bash
# SPDX-License-Identifier: MIT
# guest-kernel.sh - the Debian kernel the VM tests boot: the versioned
# package behind linux-image-amd64 (e.g. 6.1.0-57-amd64, its ABI name).
# scripts/vm-assets.sh downloads its image; scripts/install-deps.sh
# installs its headers (the guest driver is built against them). Reads
# apt's lists (updated first when they do not know the package and we are
# root). Prints the ABI name.
set -euo pipefail
abi() { apt-cache depends linux-image-amd64 2>/dev/null |
	sed -n 's/^ *Depends: linux-image-\([^ ]*\)$/\1/p' | head -n 1; }
a=$(abi)
if [ -z "$a" ] && [ "$(id -u)" = 0 ]; then
	apt-get update -qq >/dev/null
	a=$(abi)
fi
[ -n "$a" ] || { echo "guest-kernel: no linux-image-amd64 in apt's lists (apt-get update as root)" >&2; exit 1; }
echo "$a"
