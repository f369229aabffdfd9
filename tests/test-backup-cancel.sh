#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Cancelling a running backup stops it, marks it cancelled, and leaves no
# checkpoint, scratch file, libvirt job or partial object behind; the next
# backup succeeds.
source "${abs_top_srcdir:-$(dirname "$0")/..}/tests/functions.sh"

dom=vvtest-cancel-$$
make_domain "$dom" 1024
guest_write "$dom" vda "write -P 0x5a 0 1000M"
start_daemon

out=$(vv backup "$dom" --json) || fail "backup start"
job=$(jq -r .job.id <<<"$out") id=$(jq -r .backup.id <<<"$out")

# Hold the backup half way (QEMU stopped), cancel, let QEMU go on.
hold_backup_midway "$dom" "$job"
vv job cancel "$job" >/dev/null || { kill -CONT "$QEMU_PID"; fail "job cancel"; }
kill -CONT "$QEMU_PID"

j=$(wait_job "$job" cancelled failed completed)
assert_eq "$(jq -r .status <<<"$j")" cancelled "job status after cancel"
b=$(vv show "$id" --json)
assert_eq "$(jq -r .status <<<"$b")" cancelled "backup status after cancel"
[ "$(jq -r .error <<<"$b")" != null ] || fail "a cancelled backup says why"

assert_eq "$(checkpoints_of "$dom")" "" "checkpoints after cancel"
assert_eq "$(ls -A "$VV_STATE/run")" "" "scratch files after cancel"
libvirt_job_idle "$dom" || fail "libvirt job still active after cancel"
assert_eq "$(find "$VV_STATE/backups" -type f | wc -l)" 0 "objects after cancel"

# Cancelling a finished job is refused with a clear message.
expect_failure vv job cancel "$job"
assert_contains "$ERR" "$job" "cancel of a finished job"
expect_failure vv job cancel job-000000000000
assert_contains "$ERR" "job-000000000000" "cancel of an unknown job"

id2=$(vv backup "$dom" --wait) || fail "backup after cancel"
vv verify "$id2" >/dev/null || fail "verify after cancel"
assert_eq "$(checkpoints_of "$dom")" "virtvault-$id2" "checkpoint of the good backup"

# SIGTERM while a backup runs: the daemon cancels it, cleans up and exits 0.
# (--full: an incremental of an unchanged disk would end at once.)
out=$(vv backup "$dom" --full --json) || fail "backup start"
job=$(jq -r .job.id <<<"$out") id3=$(jq -r .backup.id <<<"$out")
hold_backup_midway "$dom" "$job"
kill -TERM "$VV_PID"
# The daemon has taken the signal and is cancelling while QEMU still hangs.
wait_for 30 "virtvaultd logging its stop" daemon_logged "stopping on Terminated: cancelling running jobs"
kill -CONT "$QEMU_PID"
wait "$VV_PID"; st=$?
assert_eq "$st" 0 "exit status of virtvaultd after SIGTERM"
libvirt_job_idle "$dom" || fail "libvirt job still active after SIGTERM"
assert_eq "$(checkpoints_of "$dom")" "virtvault-$id2" "checkpoints after SIGTERM"
assert_eq "$(ls -A "$VV_STATE/run")" "" "scratch files after SIGTERM"
start_daemon
assert_eq "$(vv show "$id3" --json | jq -r .status)" cancelled "backup interrupted by SIGTERM"
exit 0
