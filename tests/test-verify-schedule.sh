#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Scheduled verify, driven by the test clock: a policy with --verify-every
# 1 re-verifies its completed backups, one verify job a day per backup
# (at the backup's own time of the day, at least half a day after the
# last one).  A byte flipped in the stored
# image of the file target makes the scheduled verify mark the backup
# corrupt, with the reason: virtvault list, show, the API and the policy
# card say so, a user sees none of it, a restore is refused without
# --force, and the policy's next backup of that chain is a full saying
# why.  A manual verify that passes clears the mark; one that finds the
# damage sets it again.
source "${abs_top_srcdir:-$(dirname "$0")/..}/tests/functions.sh"
requires_cmd setpriv

dom=vvtest-vs-$$
make_domain "$dom" 16
guest_write "$dom" vda "write -P 0x5a 0 4M"
start_daemon --test-clock=2026-11-24T01:30:00Z

expect_failure vv policy create bad --schedule daily --at 02:00 --verify-every 366
assert_contains "$ERR" "verify every '366'" "verify-every beyond a year"
expect_failure vv policy create bad --schedule daily --at 02:00 --verify-every -1
vv policy create nightly --schedule daily --at 02:00 --max-chain 6 --verify-every 1 >/dev/null ||
    fail "policy create --verify-every 1"
assert_eq "$(vv policy show nightly --json | jq -r .verify_every)" 1 "verify_every in the API"
vv policy attach nightly "$dom" >/dev/null || fail "policy attach"

runs () { vv policy runs nightly --json || fail "policy runs"; }
verify_jobs () {  # BACKUP: the verify jobs of that backup, oldest first
    vv job list --json | jq -c --arg b "$1" '[.[] | select(.kind == "verify" and .backup_id == $b)] | reverse'
}
# advance DURATION : moves the test clock; every run and verify that
# became due has been submitted when it returns.
advance () { vv debug clock advance "$1" >/dev/null || fail "clock advance $1"; }

# Day 1, 02:00: the policy's first backup, a full.
advance 1h
b1=$(runs | jq -r '.[0].backup_id')
[ -n "$b1" ] && [ "$b1" != null ] || fail "no policy run on day 1"
wait_job "$(vv show "$b1" --json | jq -r .job_id)" completed >/dev/null
assert_eq "$(vv show "$b1" --json | jq -r .type)" full "first policy backup"
assert_eq "$(verify_jobs "$b1" | jq length)" 0 "no verify before its time"
out=$(vv policy show nightly) || fail "policy show"
assert_contains "$out" "Verify: every 1 day; last verify: -; corrupt backups: 0 of 1" "policy card before any verify"

# No more backups for now: only the verify runs when the clock moves.
vv policy detach "$dom" >/dev/null || fail "policy detach"

img=$(find "$VV_STATE/backups" -path "*/$b1/vda.qcow2")
[ -f "$img" ] || fail "stored image of $b1 not found"
off=$(( $(stat -c %s "$img") - 4096 ))
flip "$img" "$off"

# Within a day the backup's verify slot comes: one job, which finds the
# flipped byte.
advance 1d
jobs=$(verify_jobs "$b1")
assert_eq "$(jq length <<<"$jobs")" 1 "one scheduled verify of $b1 in its first day"
job=$(jq -r '.[0].id' <<<"$jobs")
assert_eq "$(jq -r '.[0].domain_uuid' <<<"$jobs")" "$(virsh domuuid "$dom" | head -1)" "the verify job holds its domain"
j=$(wait_job "$job" completed failed)
assert_eq "$(jq -r .status <<<"$j")" failed "scheduled verify of the tampered backup"
assert_contains "$(jq -r .error <<<"$j")" "is corrupt on target 'local': sha256 is" "verify job error"
[ "$(jq -r .bytes_total <<<"$j")" -gt 0 ] || fail "the verify job had no progress"

b=$(vv show "$b1" --json) || fail "show $b1"
assert_eq "$(jq -r '[.status, (.corrupt | tostring), .verify_result] | join(" ")' <<<"$b")" "completed true corrupt" "catalog state of the tampered backup"
assert_contains "$(jq -r .corrupt_reason <<<"$b")" "vda.qcow2 of backup $b1 is corrupt on target 'local'" "corrupt reason"
[ "$(jq -r .verified_at <<<"$b")" != null ] || fail "verified_at not set"
assert_eq "$(vv list "$dom" | awk -v id="$b1" '$1 == id { print $6 }')" corrupt "virtvault list shows corrupt"
out=$(vv show "$b1") || fail "show"
assert_contains "$out" "corrupt" "virtvault show status"
assert_contains "$out" "is corrupt on target 'local': sha256 is" "virtvault show says why"
card=$(vv policy show nightly --json) || fail "policy show --json"
assert_eq "$(jq -r '[.corrupt_backups, .backups, .verified_backups] | map(tostring) | join(" ")' <<<"$card")" "1 1 1" "policy card counts"
assert_eq "$(jq -r .last_verified_at <<<"$card")" "$(jq -r .verified_at <<<"$b")" "policy card: last verify"
out=$(vv policy list) || fail "policy list"
assert_contains "$out" "Verify: every 1 day; last verify: " "policy list card"
assert_contains "$out" "corrupt backups: 1 of 1" "policy list card counts the corrupt backup"

# Not again within half a period of it, however often the clock moves.
advance 6h
advance 359m
assert_eq "$(verify_jobs "$b1" | jq length)" 1 "one verify per backup per period"

# A user sees neither the backup nor its state.
nobody=65534
as_user () {
    setpriv --reuid=$nobody --regid=$nobody --clear-groups \
        curl -sS --unix-socket "$VV_SOCK" -w '\n%{http_code}' "http://localhost$1"
}
out=$(as_user /v1/backups) || fail "user list"
assert_eq "$(head -1 <<<"$out")" "[]" "a user lists no backups"
out=$(as_user "/v1/backups/$b1") || fail "user show"
assert_eq "${out##*$'\n'}" 404 "a user's show of the corrupt backup"
assert_not_contains "$out" corrupt "corrupt state in the user's answer"
out=$(as_user /v1/policies) || fail "user policies"
assert_eq "$(head -1 <<<"$out")" "[]" "a user sees no policy card"
out=$(as_user /v1/jobs) || fail "user jobs"
assert_eq "$(head -1 <<<"$out")" "[]" "a user sees no verify job"

# Restore of the corrupt point is refused unless forced.
expect_failure vv restore "$b1" --to "$VV_TMP/r1"
assert_contains "$ERR" "backup $b1 is marked corrupt" "restore refused"
assert_contains "$ERR" "--force" "restore refusal says how to insist"
[ ! -e "$VV_TMP/r1" ] || fail "a refused restore made its directory"
expect_failure vv restore "$b1" --to "$VV_TMP/r1" --force
# (a full restored as qcow2 is read as a point: the block is named)
assert_contains "$ERR" "is corrupt on target 'local': block " "a forced restore still checks what it reads"

# The policy's next backup of that chain is a full, and says why (the
# attach runs the slot missed since the last run at once).
vv policy attach nightly "$dom" >/dev/null || fail "policy attach again"
b2=$(runs | jq -r '.[0].backup_id')
[ "$b2" != "$b1" ] && [ "$b2" != null ] || fail "no policy run after the verify"
wait_job "$(vv show "$b2" --json | jq -r .job_id)" completed >/dev/null
b=$(vv show "$b2" --json) || fail "show $b2"
assert_eq "$(jq -r .type <<<"$b")" full "next policy backup after a corrupt point"
assert_contains "$(jq -r .reason <<<"$b")" "full: backup $b1 of chain $(vv show "$b1" --json | jq -r .chain_id) is marked corrupt" "reason of the full"
vv policy detach "$dom" >/dev/null || fail "policy detach"

# A manual verify that passes clears the mark; one that fails sets it.
flip "$img" "$off"
vv verify "$b1" >/dev/null || fail "manual verify of the repaired backup"
assert_eq "$(vv show "$b1" --json | jq -r '[(.corrupt | tostring), .verify_result] | join(" ")')" "false ok" "mark cleared"
assert_eq "$(vv list "$dom" | awk -v id="$b1" '$1 == id { print $6 }')" completed "list after the clear"
assert_eq "$(vv policy show nightly --json | jq -r .corrupt_backups)" 0 "policy card after the clear"
flip "$img" "$off"
expect_failure vv verify "$b1"
assert_eq "$(vv show "$b1" --json | jq -r .corrupt)" true "a manual verify marks it corrupt"
flip "$img" "$off"

# A target that holds nothing at all (a file target whose file system is
# not mounted) is no verdict: the mark, here none, stays as it was.
vv verify "$b1" >/dev/null || fail "verify of the repaired backup, again"
mv "$VV_STATE/backups" "$VV_TMP/backups.away" || fail "move the target away"
mkdir "$VV_STATE/backups"
expect_failure vv verify "$b1"
assert_contains "$ERR" "target 'local' holds no objects at all" "verify of an empty target"
assert_eq "$(vv show "$b1" --json | jq -r '[(.corrupt | tostring), .verify_result] | join(" ")')" "false failed" "an empty target marks nothing"
rmdir "$VV_STATE/backups" && mv "$VV_TMP/backups.away" "$VV_STATE/backups" || fail "move the target back"

# A verify that comes due while a manual job holds its domain waits,
# without the scheduler spinning, and runs once the domain is free.
dom2=vvtest-vs2-$$
make_domain "$dom2" 600
guest_write "$dom2" vda "write -P 0x6b 0 512M"
vv policy create busy --schedule daily --at 02:00 --verify-every 1 >/dev/null || fail "policy create busy"
vv policy attach busy "$dom2" >/dev/null || fail "policy attach busy"
now=$(vv debug clock show | cut -d' ' -f1)
vv debug clock set "$(date -u -d "${now%T*} + 1 day" +%Y-%m-%dT02:30:00Z)" >/dev/null || fail "clock set"
b3=$(vv policy runs busy --json | jq -r '.[0].backup_id')
[ -n "$b3" ] && [ "$b3" != null ] || fail "no run of policy busy"
wait_job "$(vv show "$b3" --json | jq -r .job_id)" completed >/dev/null
vv policy detach "$dom2" >/dev/null || fail "policy detach busy"
job=$(vv backup "$dom2" --full --json | jq -r .job.id) || fail "manual backup of $dom2"
hold_backup_midway "$dom2" "$job"
cpu () { awk '{ print $14 + $15 }' "/proc/$VV_PID/stat"; }
advance 1d
assert_eq "$(verify_jobs "$b3" | jq length)" 0 "no verify while a manual job holds the domain"
# Verifies of the first domain's backups may have come due too.
others_done () { [ "$(vv job list --json | jq --arg j "$job" '[.[] | select(.id != $j and (.status == "pending" or .status == "running"))] | length')" = 0 ]; }
wait_for 60 "the other jobs to end" others_done
c0=$(cpu)
sleep 2                         # measuring: nothing to wait for
c1=$(cpu)
echo "daemon CPU while a verify waited for its domain: $((c1 - c0)) ticks in 2 s"
[ $((c1 - c0)) -lt 50 ] || fail "the daemon used $((c1 - c0)) ticks of CPU in 2 s while a verify waited for its domain"
kill -CONT "$QEMU_PID"
wait_job "$job" completed >/dev/null
advance 1m
jobs=$(verify_jobs "$b3")
assert_eq "$(jq length <<<"$jobs")" 1 "the verify runs once the domain is free"
wait_job "$(jq -r '.[0].id' <<<"$jobs")" completed >/dev/null
assert_eq "$(vv show "$b3" --json | jq -r .verify_result)" ok "verify of the untouched backup"
exit 0
