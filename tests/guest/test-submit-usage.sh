#!/bin/bash
# SPDX-License-Identifier: MIT
# test-submit-usage.sh - vgpu-submit refuses bad usage with exit status 2
# and a message naming the problem, before it connects to anything; and
# reports transport failures with exit status 1.
# Needs VGPU_SUBMIT_BIN (set by meson).
set -u
BIN=${VGPU_SUBMIT_BIN:?VGPU_SUBMIT_BIN is not set}
fails=0
count=0
T=unix:/nonexistent/vm-test.sock

# expect STATUS PATTERN ARGS...: exit status STATUS and stderr matching PATTERN.
expect() {
	local want=$1 pattern=$2 out err rc
	shift 2
	count=$((count + 1))
	err=$("$BIN" "$@" 2>&1 >/dev/null)
	rc=$?
	if [ "$rc" != "$want" ]; then
		echo "FAIL: vgpu-submit $*: exit $rc, expected $want ($err)"
		fails=$((fails + 1))
	elif ! grep -qE -- "$pattern" <<<"$err"; then
		echo "FAIL: vgpu-submit $*: message '$err' does not match '$pattern'"
		fails=$((fails + 1))
	fi
}

# Help goes to stdout with status 0.
count=$((count + 1))
if ! "$BIN" --help | grep -q '^usage: vgpu-submit \[--transport URI\] OP'; then
	echo "FAIL: --help"
	fails=$((fails + 1))
fi

# Ops.
expect 2 "no op given" --transport $T
expect 2 "unknown op 'vector-sub'" --transport $T vector-sub
expect 2 "unknown op 'VECTOR-ADD'" --transport $T VECTOR-ADD
expect 2 "unexpected argument 'saxpy'" --transport $T vector-add saxpy
# Options.
expect 2 "unknown option '--bogus'" --transport $T vector-add --bogus
expect 2 "unknown option '-x'" --transport $T vector-add -x
expect 2 "option '--n' needs a value" --transport $T vector-add --n
expect 2 "option '--transport' needs a value" vector-add --transport
expect 2 "--transport URI is required" vector-add
expect 2 "--m and --k apply to sgemm only" --transport $T vector-add --m 4
expect 2 "--m and --k apply to sgemm only" --transport $T reduce-sum --k 4
# Sizes: 1 to the protocol's default limits, digits only.
for v in 0 -1 +5 ' 5' '5 ' 5x x 0x10 1e3 '' 67108865 18446744073709551616; do
	expect 2 "--n: '.*' is not an integer from 1 to 67108864" --transport $T vector-add --n "$v"
done
expect 2 "--n: '8193' is not an integer from 1 to 8192" --transport $T sgemm --n 8193
expect 2 "--m: '8193' is not an integer from 1 to 8192" --transport $T sgemm --m 8193
expect 2 "--k: '0' is not an integer from 1 to 8192" --transport $T sgemm --k 0
expect 2 "exceed the protocol's default limits" --transport $T vector-add --n 67108864
expect 2 "exceed the protocol's default limits" --transport $T sgemm --m 8192 --n 8192 --k 8192
expect 2 "--repeat: '0' is not an integer from 1 to 1000000" --transport $T saxpy --repeat 0
expect 2 "--repeat: '1000001'" --transport $T saxpy --repeat 1000001
expect 2 "--depth: '1025' is not an integer from 1 to 1024" --transport $T saxpy --depth 1025
expect 2 "--depth 1024 with these sizes needs more" --transport $T saxpy --n 1000000 --depth 1024 --repeat 2000
expect 2 "--seed: '-1'" --transport $T saxpy --seed -1
expect 2 "--vm-id: '4294967296' is not an integer from 0 to 4294967295" \
	--transport $T saxpy --vm-id 4294967296
expect 2 "--timeout-ms: '0'" --transport $T saxpy --timeout-ms 0
# URIs: malformed ones are usage errors.
for uri in bogus /run/vgpu/vm.sock unix: spool: spool:relative/dir spool:./x 'unix:/a
b' tcp:1.2.3.4:5; do
	expect 2 "is not a transport URI" --transport "$uri" vector-add
done
long=unix:/$(printf 'a%.0s' $(seq 1 120))
expect 2 "is not a transport URI" --transport "$long" vector-add
# Well-formed URIs that cannot be reached fail with status 1.
expect 1 "cannot connect to unix:/nonexistent/vm-test.sock: not found" --transport $T vector-add
expect 1 "cannot connect to spool:/nonexistent/vgpu: not found \(a spool directory must .*req/ and resp/" \
	--transport spool:/nonexistent/vgpu saxpy
# A spool directory without req/ and resp/ (the mediator makes them, never the client).
spool=$(mktemp -d)
trap 'rm -rf "$spool"' EXIT
expect 1 "cannot connect to spool:$spool: not found \(.*req/ and resp/" --transport "spool:$spool" saxpy
mkdir "$spool/req"
expect 1 "cannot connect to spool:$spool: not found" --transport "spool:$spool" saxpy
if [ -e "$spool/resp" ]; then
	echo "FAIL: vgpu-submit created resp/"
	fails=$((fails + 1))
fi
# Usage is checked before the transport: a bad size wins over a dead socket.
expect 2 "--n" --transport $T vector-add --n 0 --verify --json

echo "$((count - fails)) of $count checks passed"
[ "$fails" = 0 ]
