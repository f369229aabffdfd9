#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# A restore to a directory (--to DIR) and a restore as a new domain that
# the daemon's death interrupts while their staging directory exists
# (fault point restore-staged=crash, docs/testing.md) leave nothing
# behind once the daemon is started again: the staging directory is
# removed at start-up (and the directory, when the restore had created
# it), no restore record is left, and the same restore then succeeds
# with the content of the backup.
source "${abs_top_srcdir:-$(dirname "$0")/..}/tests/functions.sh"

dom=vvtest-rsc-$$
new=vvtest-rsc-new-$$
make_domain "$dom" 64
ref=$VV_TMP/ref-vda.raw
truncate -s 64M "$ref"
w () { guest_write "$dom" vda "$1"; ref_write "$ref" "$1"; }
w "write -P 0x5a 0 1M"
w "write -P 0xa5 40M 2M"
start_daemon --test-clock
id=$(vv backup "$dom" --disks vda --wait) || fail "backup: $id"
stop_daemon
cleanup_fn "virsh undefine '$new'"

records () { ls -A "$VV_STATE/restore" 2>/dev/null | grep -c json; }
# Waits for the daemon to end at the fault point (exit status 86).
wait_crash () {
    local st
    wait "$VV_PID"; st=$?
    assert_eq "$st" 86 "exit status of the daemon at the fault point"
}

# ---- A: restore into an existing directory ----
out=$VV_TMP/out
staging=$out/.virtvault-restore-$id
mkdir "$out"
VV_TEST_FAULT=restore-staged=crash start_daemon --test-clock
vv restore "$id" --to "$out" >/dev/null 2>&1 && fail "A: the restore survived its crash point"
wait_crash
[ -d "$staging" ] || fail "A: no staging directory when the daemon died"
start_daemon --test-clock
[ -e "$staging" ] && fail "A: the staging directory $staging was not removed at start-up"
assert_eq "$(ls -A "$out")" "" "A: the restore directory after recovery"
assert_eq "$(records)" 0 "A: restore records after recovery"
daemon_logged "its staging directory $staging was removed" || fail "A: the log does not say what start-up removed"
vv restore "$id" --to "$out" >/dev/null || fail "A: the restore after recovery"
"$QEMU_IMG" compare -q "$ref" "$out/vda.qcow2" || fail "A: the restored vda differs from the backed-up one"
assert_eq "$(ls -A "$out")" "vda.qcow2" "A: the restore directory after the restore"
assert_eq "$(records)" 0 "A: restore records after the restore"
stop_daemon

# ---- B: restore as a new domain, into a directory it creates ----
out=$VV_TMP/new
staging=$out/.virtvault-restore-$id
VV_TEST_FAULT=restore-staged=crash start_daemon --test-clock
vv restore "$id" --as-new "$new" --to "$out" >/dev/null 2>&1 && fail "B: the restore survived its crash point"
wait_crash
[ -d "$staging" ] || fail "B: no staging directory when the daemon died"
start_daemon --test-clock
[ -e "$staging" ] && fail "B: the staging directory $staging was not removed at start-up"
[ -e "$out" ] && fail "B: the directory the restore created is left: $(ls -A "$out")"
assert_eq "$(records)" 0 "B: restore records after recovery"
virsh dominfo "$new" >/dev/null 2>&1 && fail "B: domain $new was defined by the interrupted restore"
vv restore "$id" --as-new "$new" --to "$out" >/dev/null || fail "B: the restore after recovery"
"$QEMU_IMG" compare -q "$ref" "$out/vda.qcow2" || fail "B: the restored vda differs from the backed-up one"
assert_eq "$(ls -A "$out")" "vda.qcow2" "B: the new domain's directory"
assert_eq "$(records)" 0 "B: restore records after the restore"
exit 0
