#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# An in-place restore interrupted between its renames never leaves a
# domain with a mix of old and restored disks, and a rollback that fails
# says so instead of claiming the disks were put back.  The moments are
# hit with fault points (VV_TEST_FAULT, honoured only by a daemon started
# with --test-clock; docs/testing.md):
#  A. the daemon dies right after the first of two renames (vda restored,
#     vdb old); the next start puts vda back from the journal: both disks
#     are the old ones, no staging directory or journal is left;
#  B. vdb's rename fails and putting vda back fails too: the error says
#     vda could not be put back and where its old image is, the staging
#     directory holding it is kept; the next start puts it back;
#  C. the daemon dies after every rename, before the domain is started:
#     the next start keeps the restored disks and removes the old ones.
# Then a restore without faults replaces both disks.
source "${abs_top_srcdir:-$(dirname "$0")/..}/tests/functions.sh"

dom=vvtest-ripc-$$
make_persistent_domain "$dom" 256 32 images2
guest_write "$dom" vda "write -P 0x11 0 4M"
guest_write "$dom" vdb "write -P 0x22 0 4M"
start_daemon --test-clock
id=$(vv backup "$dom" --all-disks --wait) || fail "backup: $id"
vv restore "$id" --to "$VV_TMP/restored" >/dev/null || fail "restore to a directory"
guest_write "$dom" vda "write -P 0x33 0 8M"
guest_write "$dom" vdb "write -P 0x44 0 8M"
virsh destroy "$dom" >/dev/null || fail "destroy"
stop_daemon
cp "$DISK_vda" "$VV_TMP/old-vda.qcow2"; cp "$DISK_vdb" "$VV_TMP/old-vdb.qcow2"

is_old () { "$QEMU_IMG" compare -q "$VV_TMP/old-$1.qcow2" "$2"; }
is_restored () { "$QEMU_IMG" compare -q "$VV_TMP/restored/$1.qcow2" "$2"; }
leftovers () { ls -A "$VV_TMP/images" "$VV_TMP/images2" "$VV_STATE/restore" 2>/dev/null | grep -c -e virtvault -e json; }
# Waits for the daemon to end at the fault point (exit status 86).
wait_crash () {
    local st
    wait "$VV_PID"; st=$?
    assert_eq "$st" 86 "exit status of the daemon at the fault point"
}

# ---- A: crash between the renames ----
VV_TEST_FAULT=inplace-after-rename-1=crash start_daemon --test-clock
vv restore "$id" --in-place --yes >/dev/null 2>&1 && fail "the restore survived its crash point"
wait_crash
is_restored vda "$DISK_vda" || fail "A: vda was not renamed before the crash (no mix to recover from)"
is_old vdb "$DISK_vdb" || fail "A: vdb changed before the crash"
ls "$VV_STATE/restore/"*.json >/dev/null 2>&1 || fail "A: no restore journal left by the crash"
start_daemon
is_old vda "$DISK_vda" || fail "A: vda was not put back at start-up"
is_old vdb "$DISK_vdb" || fail "A: vdb differs after recovery"
assert_eq "$(leftovers)" 0 "A: staging directories and journals after recovery"
grep -q "every disk was put back" "$VV_STATE/daemon.log" || fail "A: the log does not say what recovery did"
stop_daemon

# ---- B: a failed rename whose rollback fails ----
VV_TEST_FAULT=inplace-rename-2=fail,inplace-rollback-rename=fail start_daemon --test-clock
expect_failure vv restore "$id" --in-place --yes
assert_contains "$ERR" "disk vda could not be put back" "B: the error names the disk not put back"
assert_contains "$ERR" "/previous" "B: the error says where the old image is"
case "$ERR" in *"were put back"*) fail "B: the error claims the disks were put back: $ERR" ;; esac
is_restored vda "$DISK_vda" || fail "B: vda should be the restored one (its rollback failed)"
keep=$(ls -d "$VV_TMP"/images/.virtvault-restore-*/previous) || fail "B: the old vda is not kept"
is_old vda "$keep" || fail "B: the kept image is not the old vda"
stop_daemon
start_daemon --test-clock
is_old vda "$DISK_vda" || fail "B: vda was not put back at the next start"
is_old vdb "$DISK_vdb" || fail "B: vdb differs"
assert_eq "$(leftovers)" 0 "B: staging directories and journals after recovery"

# ---- C: a crash after every rename, before the domain is started ----
# The restore is done: the next start keeps the restored disks and drops
# the old images (putting them back would undo a finished restore, under a
# domain that may already run on the new disks).
stop_daemon
VV_TEST_FAULT=inplace-before-start=crash start_daemon --test-clock
vv restore "$id" --in-place --yes --start >/dev/null 2>&1 && fail "C: the restore survived its crash point"
wait_crash
is_restored vda "$DISK_vda" || fail "C: vda was not renamed before the crash"
is_restored vdb "$DISK_vdb" || fail "C: vdb was not renamed before the crash"
start_daemon --test-clock
is_restored vda "$DISK_vda" || fail "C: vda was put back although the restore had finished its renames"
is_restored vdb "$DISK_vdb" || fail "C: vdb was put back although the restore had finished its renames"
assert_eq "$(leftovers)" 0 "C: staging directories and journals after recovery"
grep -q "interrupted after its renames" "$VV_STATE/daemon.log" || fail "C: the log does not say what recovery did"
stop_daemon
for d in vda vdb; do cp "$VV_TMP/old-$d.qcow2" "$(eval echo \$DISK_$d)"; done
start_daemon --test-clock

# ---- and without faults ----
vv restore "$id" --in-place --yes >/dev/null || fail "restore without faults"
is_restored vda "$DISK_vda" || fail "restored vda"
is_restored vdb "$DISK_vdb" || fail "restored vdb"
assert_eq "$(leftovers)" 0 "leftovers after a restore"
exit 0
