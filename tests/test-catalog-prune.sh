#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Old rows are pruned (docs/catalog.md, "Pruning"): with
# audit_retention_days = 10 and job_retention_days = run_retention_days
# = 5, the daemon deletes, at start and every hour of its (test) clock,
# audit rows, finished jobs and finished policy runs older than that;
# newer rows, running jobs and runs, and the newest run of each policy
# instance (where the scheduler resumes) stay.
source "${abs_top_srcdir:-$(dirname "$0")/..}/tests/functions.sh"

requires_cmd sqlite3
cat > "$VV_TMP/vv.conf" <<EOF
audit_retention_days = 10
job_retention_days = 5
run_retention_days = 5
EOF
T0=2026-06-01T12:00:00Z
start_daemon --config "$VV_TMP/vv.conf" --test-clock=$T0

db=$VV_STATE/catalog.db
sql () { sqlite3 -cmd ".timeout 5000" "$db" "$@"; }
ago () { date -u -d "2026-06-01 12:00:00 UTC - $1" +%Y-%m-%dT%H:%M:%SZ; }
ids () { sql "SELECT $2 FROM $1 ORDER BY $2" | paste -sd, -; }

# A real audit row at T0, through the API.
vv policy create p --schedule daily --at 03:00 >/dev/null || fail "policy create"
[ "$(sql "SELECT count(*) FROM audit WHERE action = 'policy.create' AND at = '$T0'")" = 1 ] ||
    fail "no audit row of the policy's creation at $T0"

# Rows of chosen ages (the daemon's API makes rows only at "now").
u1=11111111-1111-1111-1111-111111111111 u2=22222222-2222-2222-2222-222222222222
sql "
INSERT INTO audit (at, uid, action, object, result) VALUES ('$(ago '20 days')', 0, 'old.audit', 'x', 'ok');
INSERT INTO jobs (id, kind, status, created_at, owner_uid) VALUES
  ('job-old-done', 'backup', 'completed', '$(ago '20 days')', 0),
  ('job-old-running', 'backup', 'running', '$(ago '20 days')', 0),
  ('job-new-failed', 'verify', 'failed', '$(ago '1 day')', 0);
INSERT INTO policy_runs (id, policy, domain_uuid, scheduled_for, started_at, result) VALUES
  (1, 'p', '$u1', '$(ago '20 days')', '$(ago '20 days')', 'ok'),
  (2, 'p', '$u1', '$(ago '19 days')', '$(ago '19 days')', 'failed'),
  (5, 'p', '$u1', '$(ago '18 days')', '$(ago '18 days')', 'running'),
  (6, 'p', '$u1', '$(ago '2 days')', '$(ago '2 days')', 'skipped'),
  (7, 'p', '$u1', '$(ago '1 day')', '$(ago '1 day')', 'ok'),
  (8, 'p', '$u2', '$(ago '20 days')', '$(ago '20 days')', 'ok');
" || fail "inserting old rows"

# wait_rows TABLE COLUMN EXPECTED WHAT : the pruner runs on its own thread.
wait_rows () {
    local i got
    for i in $(seq 1 100); do
        got=$(ids "$1" "$2")
        [ "$got" = "$3" ] && return 0
        sleep 0.1
    done
    fail "$4: $1 holds '$got', expected '$3'"
}

# An hour later the pruner runs again: what is older than the ages goes.
vv debug clock advance 1h >/dev/null || fail "clock advance 1h"
wait_rows jobs id "job-new-failed,job-old-running" "jobs an hour after T0"
wait_rows policy_runs id "5,6,7,8" "runs an hour after T0"
[ "$(sql "SELECT count(*) FROM audit WHERE action = 'old.audit'")" = 0 ] || fail "the 20-day-old audit row is still there"
[ "$(sql "SELECT count(*) FROM audit WHERE action = 'policy.create'")" = 1 ] || fail "the new audit row is gone"
grep -q "pruned 1 audit rows, 1 jobs and 2 policy runs older than 10, 5 and 5 days" "$VV_STATE/daemon.log" ||
    fail "no log line of the pruning"

# Six days on: the day-old job and the 2-day-old run are beyond 5 days;
# run 7 is the newest of its instance and stays, so do running ones.
vv debug clock advance 6d >/dev/null || fail "clock advance 6d"
wait_rows jobs id "job-old-running" "jobs 6 days after T0"
wait_rows policy_runs id "5,7,8" "runs 6 days after T0"
[ "$(sql "SELECT count(*) FROM audit WHERE action = 'policy.create'")" = 1 ] || fail "the 6-day-old audit row is gone (kept 10 days)"

# Past 10 days the audit row of the creation goes too.
vv debug clock advance 5d >/dev/null || fail "clock advance 5d"
for i in $(seq 1 100); do
    [ "$(sql "SELECT count(*) FROM audit WHERE action = 'policy.create'")" = 0 ] && break
    sleep 0.1
done
[ "$(sql "SELECT count(*) FROM audit WHERE action = 'policy.create'")" = 0 ] || fail "the 11-day-old audit row is still there"
wait_rows policy_runs id "5,7,8" "runs 11 days after T0"

# The policy's run history through the API still answers.
vv policy runs p >/dev/null || fail "policy runs after pruning"
exit 0
