#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Policy retries survive a restart of virtvaultd (test clock):
#  A. a run fails (the target refuses writes); the daemon is restarted
#     before the retry is due; the retry still runs 5 minutes after the
#     failure, as documented, and succeeds;
#  B. the daemon is killed (SIGKILL) during a run; after the restart the
#     run shows failed ("virtvaultd stopped during the run") instead of
#     running for ever, and it is retried 5 minutes later.
source "${abs_top_srcdir:-$(dirname "$0")/..}/tests/functions.sh"
requires_cmd sqlite3 chattr

dom=vvtest-polrt-$$
make_domain "$dom" 1024
guest_write "$dom" vda "write -P 0x5a 0 1000M"

start_daemon --test-clock=2026-12-01T01:30:00Z
vv policy create rt --schedule daily --at 02:00 >/dev/null || fail "policy create"
vv policy attach rt "$dom" >/dev/null || fail "policy attach"

runs () { vv policy runs rt --json || fail "policy runs"; }
nruns () { runs | jq length; }
clock () { vv debug clock show | cut -d' ' -f1; }
restart () {  # restart the daemon at the same test clock time
    local now
    now=$(clock)
    stop_daemon
    start_daemon --test-clock="$now"
}
# wait_run_done : waits for the newest run to end; its record in $RUN.
wait_run_done () {
    local bk job i
    bk=$(runs | jq -r '.[0].backup_id')
    if [ "$bk" != null ]; then
        job=$(vv show "$bk" --json | jq -r .job_id) || fail "show $bk"
        wait_job "$job" completed failed cancelled >/dev/null
    fi
    for i in $(seq 1 200); do
        RUN=$(runs | jq '.[0]')
        [ "$(jq -r .result <<<"$RUN")" != running ] && return 0
        sleep 0.05
    done
    fail "the newest run did not end: $RUN"
}

# ---- A ----
chattr +i "$VV_STATE/backups" || fail "chattr +i"
vv debug clock advance 30m >/dev/null || fail "advance to 02:00"
assert_eq "$(nruns)" 1 "runs at 02:00"
wait_run_done
assert_eq "$(jq -r .result <<<"$RUN")" failed "result with an immutable target"
assert_eq "$(sqlite3 "$VV_STATE/catalog.db" "SELECT slot, failures, retry_at FROM policy_retries")" \
    "2026-12-01T02:00:00Z|1|2026-12-01T02:05:00Z" "retry state in the catalog"
chattr -i "$VV_STATE/backups" || fail "chattr -i"
vv debug clock advance 2m >/dev/null || fail "advance 2m"
restart
assert_eq "$(nruns)" 1 "runs right after the restart (the retry is not due)"
vv debug clock advance 3m >/dev/null || fail "advance to 02:05"
assert_eq "$(nruns)" 2 "runs at 02:05: the retry after the restart"
wait_run_done
assert_eq "$(jq -r .result <<<"$RUN")" ok "result of the retry ($(jq -r .message <<<"$RUN"))"
assert_eq "$(jq -r .scheduled_for <<<"$RUN")" 2026-12-01T02:00:00Z "slot of the retry"
assert_eq "$(sqlite3 "$VV_STATE/catalog.db" "SELECT count(*) FROM policy_retries")" 0 \
    "retry state after the success"

# ---- B ----
guest_write "$dom" vda "write -P 0x6b 0 1000M"
vv debug clock advance 1435m >/dev/null || fail "advance to the next day's 02:00"
assert_eq "$(nruns)" 3 "runs at the next day's 02:00"
bk=$(runs | jq -r '.[0].backup_id')
job=$(vv show "$bk" --json | jq -r .job_id)
hold_backup_midway "$dom" "$job"
now=$(clock)
kill -9 "$VV_PID"
wait "$VV_PID" 2>/dev/null
kill -CONT "$QEMU_PID"
start_daemon --test-clock="$now"
RUN=$(runs | jq '.[0]')
assert_eq "$(jq -r .result <<<"$RUN")" failed "the run the daemon was killed in"
assert_contains "$(jq -r .message <<<"$RUN")" "virtvaultd stopped during the run" "its message"
assert_eq "$(sqlite3 "$VV_STATE/catalog.db" "SELECT failures, retry_at FROM policy_retries")" \
    "1|2026-12-02T02:05:00Z" "retry state after the crash"
vv debug clock advance 4m >/dev/null || fail "advance 4m"
assert_eq "$(nruns)" 3 "no retry before 5 minutes"
vv debug clock advance 1m >/dev/null || fail "advance 1m"
assert_eq "$(nruns)" 4 "the retry 5 minutes after the restart"
wait_run_done
assert_eq "$(jq -r .result <<<"$RUN")" ok "result of the retry after the crash ($(jq -r .message <<<"$RUN"))"
assert_eq "$(jq -r .scheduled_for <<<"$RUN")" 2026-12-02T02:00:00Z "slot of the retry after the crash"
exit 0
