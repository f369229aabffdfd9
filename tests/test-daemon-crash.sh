#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# virtvaultd killed with SIGKILL in the middle of a backup: after a
# restart the job and the backup show failed with the reason, the libvirt
# job, checkpoint, scratch files and partial objects are gone, and the
# next backup succeeds.  A delete that failed half way leaves a failed
# backup and is finished at the next start.  Also: a second daemon on the same state
# directory refuses to start.
source "${abs_top_srcdir:-$(dirname "$0")/..}/tests/functions.sh"

dom=vvtest-crash-$$
make_domain "$dom" 1024
guest_write "$dom" vda "write -P 0x5a 0 1000M"
start_daemon

# A second daemon on the same state directory is refused.
expect_failure "$abs_top_builddir/virtvaultd" --foreground --state-dir "$VV_STATE" \
    --socket "$VV_TMP/other.sock"
assert_contains "$ERR" "$VV_STATE" "second daemon names the state directory"
[ ! -e "$VV_TMP/other.sock" ] || fail "the refused daemon created a socket"

out=$(vv backup "$dom" --json) || fail "backup start"
job=$(jq -r .job.id <<<"$out") id=$(jq -r .backup.id <<<"$out")
# Hold the backup half way (QEMU stopped), kill the daemon hard.
kill_daemon_midway "$dom" "$job"
# libvirt still runs the backup job of the dead daemon.
libvirt_backup_running "$dom" || fail "expected the orphaned libvirt backup job"

start_daemon
j=$(vv job show "$job" --json) || fail "job show after restart"
assert_eq "$(jq -r .status <<<"$j")" failed "job status after the crash"
assert_contains "$(jq -r .error <<<"$j")" "virtvaultd" "job error says the daemon stopped"
b=$(vv show "$id" --json)
assert_eq "$(jq -r .status <<<"$b")" failed "backup status after the crash"
assert_contains "$(jq -r .error <<<"$b")" "virtvaultd" "backup error says the daemon stopped"

libvirt_job_idle "$dom" || fail "libvirt job still active after recovery"
assert_eq "$(checkpoints_of "$dom")" "" "checkpoints after recovery"
assert_eq "$(ls -A "$VV_STATE/run")" "" "scratch files after recovery"
assert_eq "$(find "$VV_STATE/backups" -type f | wc -l)" 0 "objects (also partial ones) after recovery"

id2=$(vv backup "$dom" --wait) || fail "backup after the crash"
vv restore "$id2" --to "$VV_TMP/restore" >/dev/null || fail "restore after the crash"
guest_flush "$dom" vda
"$QEMU_IMG" compare -q -U "$DISK_vda" "$VV_TMP/restore/vda.qcow2" || fail "restored disk differs"

# A delete that fails half way (an image that cannot be unlinked, after
# the manifest is gone) leaves a failed backup, never a completed one
# that cannot be restored; the next start of the daemon finishes it.
id3=$(vv backup "$dom" --wait) || fail "backup 3"
mf=$(find "$VV_STATE/backups" -path "*/$id3/manifest.json")
[ -n "$mf" ] || fail "no manifest of $id3"
dir3=$(dirname "$mf")
chattr +i "$dir3/vda.qcow2" || fail "chattr +i"
expect_failure vv delete "$id3"
b=$(vv show "$id3" --json) || fail "show $id3 after the failed delete"
assert_eq "$(jq -r .status <<<"$b")" failed "status after a failed delete"
assert_contains "$(jq -r .error <<<"$b")" "being deleted" "error after a failed delete"
[ ! -e "$mf" ] || fail "the manifest is still there"
chattr -i "$dir3/vda.qcow2"
kill -9 "$VV_PID"
wait "$VV_PID" 2>/dev/null
start_daemon
expect_failure vv show "$id3"
assert_contains "$ERR" "no backup" "the interrupted delete finished at start-up"
assert_eq "$(find "$dir3" -type f 2>/dev/null | wc -l)" 0 "objects of the deleted backup"
assert_eq "$(checkpoints_of "$dom")" "" "checkpoint of the deleted backup"
grep -q "$id3.*the delete that was interrupted is finished" "$VV_STATE/daemon.log" ||
    fail "the daemon log does not name the finished delete"

# SIGTERM is a clean shutdown: the socket goes away, exit status 0.
kill -TERM "$VV_PID"
wait "$VV_PID"; st=$?
assert_eq "$st" 0 "exit status after SIGTERM"
[ ! -e "$VV_SOCK" ] || fail "socket left after SIGTERM"
exit 0
