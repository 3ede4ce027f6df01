#!/bin/bash
# SPDX-License-Identifier: MIT
# Who may act as a VM on dom0 (issue 9): a VM's spool req/ and resp/ belong
# to its own uid (spool_uid_base + vm_id, the uid its NFS export squashes
# the guest to), mode 0700, and answers are that uid's, 0600. Another
# local user, and another VM's uid, can neither publish a request nor read
# an answer; the VM's own uid does both. A request over 64 KiB (read on a
# worker thread) is served the same way.
. "$(dirname "$0")/lib.sh"
# Run as other uids: the system's python3 (a user's pyenv is not theirs to
# read), and copies of the clients where they can read them (the checkout
# may be in a private directory).
SC="/usr/bin/python3 $T/py/spool_client.py"
BASE=3000000

vm 1 A high; vm 2 B low
chmod 755 "$T" # the VMs' uids must reach SPOOL, as over NFS
mkdir "$T/py" && cp "$VGPU_TESTS/e2e/spool_client.py" "$VGPU_TESTS/e2e/raw_client.py" "$T/py/"
start_mediator --set spool_uid_base=$BASE
D1=$SPOOL/$(uuid 1); U1=$((BASE + 1)); U2=$((BASE + 2))
as() { local u=$1; shift; setpriv --reuid="$u" --regid="$u" --clear-groups -- "$@"; }

expect_eq "$(stat -c '%a %u %g' "$D1/req")" "700 $U1 $U1" "req/ is VM 1's uid's, 0700"
expect_eq "$(stat -c '%a %u %g' "$D1/resp")" "700 $U1 $U1" "resp/ is VM 1's uid's, 0700"
expect_eq "$(stat -c '%a %u' "$SPOOL/$(uuid 2)/req")" "700 $U2" "VM 2's req/ is its own uid's"
as 65534 touch "$D1/req/.tmp-x" 2>/dev/null && fail "nobody wrote into VM 1's req/" \
	|| pass "another local user cannot write VM 1's req/"
as "$U2" touch "$D1/req/.tmp-x" 2>/dev/null && fail "VM 2's uid wrote into VM 1's req/" \
	|| pass "VM 2's uid cannot write VM 1's req/"
as "$U2" ls "$D1/resp" >/dev/null 2>&1 && fail "VM 2's uid listed VM 1's answers" \
	|| pass "VM 2's uid cannot read VM 1's resp/"

id=00000000000000a1
as "$U1" $SC "$D1" put $id 100 && pass "VM 1's uid publishes a request" || fail "VM 1's uid cannot publish"
wait_for "its answer" 10 test -f "$D1/resp/$id.resp"
expect_eq "$(stat -c '%a %u' "$D1/resp/$id.resp")" "600 $U1" "the answer is VM 1's uid's, 0600"
expect_eq "$(as "$U1" $SC "$D1" wait $id 10)" "0" "VM 1's uid reads and removes its answer"
big=00000000000000a2
as "$U1" $SC "$D1" put $big 100000 # 800 KB: read on a worker thread
expect_eq "$(as "$U1" $SC "$D1" wait $big 20)" "0" \
	"a 800 KB request read (and its 400 KB answer written) on a worker, served"
# Names in resp/ are the guest's: FIFOs where the mediator once wrote its
# temporary answer, and where the answer will be published, block nothing;
# the answer replaces the second, and the other VM is served meanwhile.
fifo=00000000000000a3
as "$U1" mkfifo "$D1/resp/.tmp-$fifo" "$D1/resp/$fifo.resp"
as "$U1" $SC "$D1" put $fifo 100
expect_eq "$(as "$U1" $SC "$D1" wait $fifo 10)" "0" "answered despite FIFOs in resp/"
expect_eq "$(python3 "$RAW" "$(sock 2)" ok 100)" "0" "the other VM served"

# VM 1's vm_id changes to 5: its directories, and the answer waiting in
# resp/, go to uid BASE + 5 at once; its old uid (which a VM given vm_id 1
# would be squashed to) loses them.
waiting=00000000000000a4
as "$U1" $SC "$D1" put $waiting 100
wait_for "an answer waiting" 10 test -f "$D1/resp/$waiting.resp"
ln -s /etc/hostname "$D1/resp/00000000000000a5.resp" # a link is never followed
admin set-vm-id --vm-uuid "$(uuid 1)" --vm-id 5 --yes --no-restart >"$T/set.out" 2>&1 || { fail "set-vm-id"; cat "$T/set.out"; }
U5=$((BASE + 5))
req_owner_is() { [ "$(stat -c %u "$D1/req")" = "$1" ]; }
wait_for "req/ is the new uid's" 10 req_owner_is "$U5"
expect_eq "$(stat -c '%a %u %g' "$D1/resp")" "700 $U5 $U5" "resp/ too"
expect_eq "$(stat -c '%a %u' "$D1/resp/$waiting.resp")" "600 $U5" "the waiting answer too"
expect_eq "$(stat -c %u /etc/hostname)" "0" "a file a link in resp/ names is left alone"
as "$U1" touch "$D1/req/.tmp-y" 2>/dev/null && fail "the old uid still writes req/" \
	|| pass "the old uid cannot write req/ any more"
expect_eq "$(as "$U5" $SC "$D1" wait $waiting 10)" "0" "the new uid reads the waiting answer"
e2e_finish
