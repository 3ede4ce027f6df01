# SPDX-License-Identifier: MIT
# Measuring the scheduler's shares end to end (sourced after lib.sh by
# test-shares.sh and test-gpus.sh): GPU time per VM from `vgpu-admin
# stats` over a window of wall time, and bounds with a tolerance $TOL.

# used: "VM_ID GPU_MS" lines, and the wall clock in ms as "0 MS".
used() {
	stats | jq -r '.vms[] | "\(.vm_id) \(.sched.gpu_ms)"'
	echo "0 $(($(date +%s%N) / 1000000))"
}
# window SECONDS: GPU ms used by each VM over the next SECONDS (times
# VGPU_E2E_WINDOW_SCALE: the TSan build's works are slow enough that 3 s
# hold some 17 of them, too few to weigh six VMs' shares), as "VM_ID MS"
# lines, and the wall time as "0 MS".
window() {
	local a b
	a=$(used)
	sleep "$(($1 * ${VGPU_E2E_WINDOW_SCALE:-1}))"
	b=$(used)
	join <(echo "$a" | sort) <(echo "$b" | sort) | awk '{ printf "%s %.3f\n", $1, $3 - $2 }'
}
# share W IDS...: the part of the VMs' GPU time that IDS used in window W.
share() {
	local w=$1
	shift
	echo "$w" | awk -v ids=" $* " '$1 != 0 { all += $2; if (index(ids, " " $1 " ")) mine += $2 }
		END { printf "%.4f\n", all ? mine / all : 0 }'
}
# of_wall W IDS...: the VMs' GPU time over the window's wall time.
of_wall() {
	local w=$1
	shift
	echo "$w" | awk -v ids=" $* " '$1 == 0 { wall = $2 } index(ids, " " $1 " ") { mine += $2 }
		END { printf "%.4f\n", wall ? mine / wall : 0 }'
}
near() { # near GOT WANT WHAT
	awk -v g="$1" -v w="$2" -v t="$TOL" 'BEGIN { exit !(g >= w - t && g <= w + t) }' &&
		pass "$3: $1 (want $2 +- $TOL)" || fail "$3: $1, want $2 +- $TOL"
}
at_least() { # at_least GOT MIN WHAT
	awk -v g="$1" -v m="$2" 'BEGIN { exit !(g >= m) }' &&
		pass "$3: $1 (at least $2)" || fail "$3: $1, want at least $2"
}

