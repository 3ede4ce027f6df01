#!/bin/bash
# SPDX-License-Identifier: MIT
# gpu-paths.sh - run gpu-paths (bench/gpu-paths.cu) in every setting that
# tells the mediator's GPU path from native's, each in a fresh process,
# interleaved, ROUNDS times (docs/performance.md, run 18):
#
#   bash bench/gpu-paths.sh [GPU_PATHS_BINARY] [ROUNDS]
set -u
BIN=${1:-./gpu-paths}
ROUNDS=${2:-5}
CONFIGS=(
	"--mem hostalloc --stream plain --wait sync"
	"--mem memfd --stream plain --wait sync"
	"--mem hostalloc --stream priority --wait sync"
	"--mem hostalloc --stream plain --wait poll"
	"--mem hostalloc --stream plain --wait waiter"
	"--mem hostalloc --stream plain --wait relay"
	"--mem memfd --stream priority --wait relay"
)
for r in $(seq "$ROUNDS"); do
	echo "# round $r"
	for n in 1024 65536; do
		for c in "${CONFIGS[@]}"; do
			# shellcheck disable=SC2086 # the settings are words
			timeout 60 "$BIN" $c --n "$n" --iters 2000 || echo "FAILED: $c --n $n"
		done
	done
done
