#!/bin/bash
# SPDX-License-Identifier: MIT
# device-multi.sh - on the GPU machine: PyTorch inference in several
# processes at once, each as a VM of its own (its own socket, worker,
# context and quota) through vgpu's libcuda.so.1 (issue 12): first two
# (VM 1 high priority in pool A, VM 5 high in pool B), then eight (VMs 1-4
# in pool A, 5-8 in pool B; priorities high, medium, low, low in each),
# VM 8 killed (SIGKILL) two seconds into its timed loop; then VM 8 again.
# Each program is bench/torch-infer.py (a resnet18 on 8 images for
# SECS seconds, default 10); its result is compared with the same
# program run natively first, alone.
#
#   [SECS=10] [SETS="--set worker_hold_us=0"] bash bench/device-multi.sh
#                     (results in $OUT, a table last; exit 1 when a result differs)
set -u
. "$(dirname "$0")/device-env.sh" multi
SECS=${SECS:-10}
PY=$(dirname "$0")/torch-infer.py
admin() { "$BIN/vgpu-admin" --db "$W/db" "$@"; }
uuid() { printf '6f1c2a10-0000-4000-8000-%012d' "$1"; }
sock() { echo "$W/run/vm-$(uuid "$1").sock"; }
prio=(x high medium low low high medium low low)
for i in 1 2 3 4 5 6 7 8; do
	admin register-vm --vm-uuid "$(uuid "$i")" --pool "$([ "$i" -le 4 ] && echo A || echo B)" \
		--priority "${prio[$i]}" --vm-id "$i" >/dev/null
done
chmod 755 "$W"
"$BIN/vgpu-mediator" --db "$W/db" --run-dir "$W/run" --spool-dir "$W/spool" --backend cuda \
	--set "cuda_worker=$BIN/vgpu-cuda-worker" --log stderr --log-level info ${SETS:-} \
	2>"$OUT/mediator.log" &
MPID=$!
for _ in $(seq 300); do [ -S "$(sock 8)" ] && break; sleep 0.1; done
failed=0
timeout 300 python3 "$PY" "$OUT/native.json" "$SECS" >"$OUT/native.out" 2>&1 || failed=1
# run PHASE VM...: one program per VM at once, through vgpu.
run() {
	local phase=$1 i pids=()
	shift
	for i in "$@"; do
		rm -f "$OUT/$phase-$i.started"
		LD_LIBRARY_PATH="$BIN/guest-cuda:$BIN" VGPU_CUDA_TRANSPORT="unix:$(sock "$i")" \
			timeout 300 python3 "$PY" "$OUT/$phase-$i.json" "$SECS" "$OUT/$phase-$i.started" \
			>"$OUT/$phase-$i.out" 2>&1 &
		pids[$i]=$!
	done
	if [ -n "${KILL:-}" ]; then
		for _ in $(seq 600); do [ -e "$OUT/$phase-$KILL.started" ] && break; sleep 0.1; done
		sleep 2
		pkill -KILL -P "${pids[$KILL]}" # python, under timeout
	fi
	for i in "$@"; do wait "${pids[$i]}"; echo $? >"$OUT/$phase-$i.rc"; done
}
run two 1 5
KILL=8 run eight 1 2 3 4 5 6 7 8
SECS=2 run again 8
kill -TERM $MPID
wait $MPID || failed=1
rm -rf "$W"
for f in "$OUT"/*.out; do # why a program failed, if one did
	grep -q . "$f" && { echo "--- $(basename "$f")"; tail -n 3 "$f"; }
done
echo "| phase | VM | pool | priority | passes | p50 / p99 ms | same result as native |"
echo "| --- | --- | --- | --- | --- | --- | --- |"
python3 - "$OUT" "${prio[@]}" <<'PY' || failed=1
import json, os, sys
d, prio = sys.argv[1], sys.argv[2:]
def load(name):
    try:
        return json.load(open(os.path.join(d, name + ".json")))
    except Exception:
        return None
n = load("native")
print("| native, alone | - | - | - | %s | %s | - |" % (
    n and n["passes"], n and "%.2f / %.2f" % (n["p50_ms"], n["p99_ms"])))
bad = n is None
for phase, vms in (("two", (1, 5)), ("eight", range(1, 9)), ("again", (8,))):
    for i in vms:
        r = load("%s-%d" % (phase, i))
        rc = open(os.path.join(d, "%s-%d.rc" % (phase, i))).read().strip()
        if phase == "eight" and i == 8:
            ok = r is None and rc == "137"
            print("| %s | %d | B | %s | killed (exit %s) | - | %s |" % (
                phase, i, prio[i], rc, "killed as meant" if ok else "NOT killed"))
            bad |= not ok
            continue
        same = bool(r and n and r["agree"] and rc == "0" and all(
            abs(a - b) <= 1e-4 * max(1.0, abs(a)) for a, b in zip(n["sums"], r["sums"])))
        bad |= not same
        print("| %s | %d | %s | %s | %s | %s | %s |" % (
            phase, i, "A" if i <= 4 else "B", prio[i], r and r["passes"],
            r and "%.2f / %.2f" % (r["p50_ms"], r["p99_ms"]), "yes" if same else "NO (exit %s)" % rc))
sys.exit(1 if bad else 0)
PY
exit $failed
