#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Cleanup that cannot be done at start-up is kept and retried, never
# skipped.  virtvaultd is killed (SIGKILL) in the middle of a backup,
# leaving libvirt's pull-mode job, the checkpoint and partial objects:
#  A. the target refuses the removal at start-up (the backup's directory
#     immutable): libvirt's part is done, what is left is recorded in the
#     backup's `cleanup`, and retried on the timer (test clock, 5 minutes);
#  B. libvirt unreachable at start-up (a daemon with an unreachable
#     --connect URI): the job and checkpoint are recorded as left, and the
#     next daemon that reaches libvirt aborts the job and deletes them;
#  C. a pull-mode job whose backup the catalog no longer shows as pending
#     or running (no cleanup recorded) is aborted before the domain's next
#     backup instead of blocking it ("already has a libvirt job").
source "${abs_top_srcdir:-$(dirname "$0")/..}/tests/functions.sh"
requires_cmd sqlite3 chattr

dom=vvtest-pendcl-$$
make_domain "$dom" 1024
guest_write "$dom" vda "write -P 0x5a 0 1000M"

# crash_midway ARGS... : starts a daemon, a backup, kills the daemon half
# way; sets $id.
crash_midway () {
    local out job
    start_daemon "$@"
    out=$(vv backup "$dom" --json) || fail "backup start"
    job=$(jq -r .job.id <<<"$out") id=$(jq -r .backup.id <<<"$out")
    kill_daemon_midway "$dom" "$job"
    libvirt_backup_running "$dom" || fail "expected the orphaned libvirt backup job"
}
field () { jq -r ".$2" <<<"$(vv show "$1" --json)"; }
objects_of () { find "$VV_STATE/backups" -path "*/$1/*" -type f | wc -l; }

# ---- A: the target refuses, the timer retries ----
crash_midway --test-clock=2026-12-01T10:00:00Z
dir=$(find "$VV_STATE/backups" -type d -name "$id")
[ -n "$dir" ] || fail "no directory of $id on the target"
[ "$(objects_of "$id")" -gt 0 ] || fail "no partial objects of $id to clean up"
chattr +i "$dir" || fail "chattr +i $dir"
start_daemon --test-clock=2026-12-01T10:00:00Z
assert_eq "$(field "$id" status)" failed "status after the restart"
assert_contains "$(field "$id" cleanup)" "could not be removed" "cleanup recorded as pending"
libvirt_job_idle "$dom" || fail "the libvirt job was not aborted (libvirt was reachable)"
assert_eq "$(checkpoints_of "$dom")" "" "checkpoints after the restart"
[ "$(objects_of "$id")" -gt 0 ] || fail "objects gone although the target refused"
chattr -i "$dir" || fail "chattr -i $dir"
# Not before the timer: 4 minutes change nothing.
vv debug clock advance 4m >/dev/null || fail "clock advance"
assert_contains "$(field "$id" cleanup)" "could not be removed" "cleanup still pending before 5 minutes"
vv debug clock advance 1m >/dev/null || fail "clock advance"
for i in $(seq 1 100); do
    [ "$(field "$id" cleanup)" = null ] && break
    sleep 0.1
done
assert_eq "$(field "$id" cleanup)" null "cleanup after the timer"
assert_eq "$(objects_of "$id")" 0 "objects after the timer's retry"
grep -q "pending cleanups of failed backups: 1 finished, 0 still left" "$VV_STATE/daemon.log" ||
    fail "the daemon log does not tell the retry"
stop_daemon

# ---- B: libvirt unreachable at start-up ----
crash_midway
start_daemon --connect "qemu+unix:///system?socket=$VV_TMP/no-libvirt.sock"
assert_eq "$(field "$id" status)" failed "status after a restart without libvirt"
assert_contains "$(field "$id" cleanup)" "libvirt was unreachable" "cleanup without libvirt pending"
assert_eq "$(objects_of "$id")" 0 "objects (the target was reachable)"
libvirt_backup_running "$dom" || fail "the job should still run (libvirt unreachable)"
stop_daemon
start_daemon
assert_eq "$(field "$id" cleanup)" null "cleanup once libvirt is reachable"
libvirt_job_idle "$dom" || fail "the orphaned job was not aborted"
assert_eq "$(checkpoints_of "$dom")" "" "checkpoints after the retry"
assert_eq "$(field "$id" checkpoint)" null "checkpoint in the catalog after the retry"
stop_daemon

# ---- C: an orphaned job the catalog knows nothing about ----
crash_midway
sqlite3 "$VV_STATE/catalog.db" \
    "UPDATE backups SET status = 'failed', error = 'lost' WHERE id = '$id'" ||
    fail "sqlite3 update"
start_daemon
libvirt_backup_running "$dom" || fail "the job should still run before the next backup"
id2=$(vv backup "$dom" --wait) || fail "the next backup was blocked by the orphaned job"
case "$(checkpoints_of "$dom")" in *"virtvault-$id"*) fail "checkpoint of the orphaned attempt left" ;; esac
guest_flush "$dom" vda
vv restore "$id2" --to "$VV_TMP/restore" >/dev/null || fail "restore"
"$QEMU_IMG" compare -q -U "$DISK_vda" "$VV_TMP/restore/vda.qcow2" || fail "restored disk differs"
exit 0
