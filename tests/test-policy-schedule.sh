#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# A daily policy (02:00 UTC, max chain 3, retention 2) driven by the test
# clock, day by day: day 1 full, days 2-4 incrementals, day 5 a new full,
# ..., day 9 a third chain, whereupon retention deletes the first chain
# (full and incrementals) on the target and in the catalog.  Every point
# left restores bit for bit.  A run missed while the daemon was down runs
# once on start-up; a failing run sets the policy to error, is retried and
# the success returns it to active; a stopped domain is skipped.
source "${abs_top_srcdir:-$(dirname "$0")/..}/tests/functions.sh"

dom=vvtest-pol-$$
make_domain "$dom" 16
ref=$VV_TMP/ref.raw
truncate -s 16M "$ref"
w () { guest_write "$dom" vda "$1"; ref_write "$ref" "$1"; }

start_daemon --test-clock=2026-11-24T01:30:00Z
assert_eq "$(vv debug clock show)" "2026-11-24T01:30:00Z (test clock)" "test clock at start"

# Bad input names the field.
expect_failure vv policy create bad --schedule daily --at 25:00
assert_contains "$ERR" "hour 25" "hour 25"
expect_failure vv policy create bad --schedule daily --at 02:00 --day mon
assert_contains "$ERR" "--day is only valid for weekly" "--day on daily"
expect_failure vv policy create bad --schedule weekly --day mon --at 02:00 --tz Mars/Olympus
assert_contains "$ERR" "unknown timezone 'Mars/Olympus'" "unknown timezone"
expect_failure vv policy create bad --schedule daily --at 02:00 --retention -1
assert_contains "$ERR" "retention '-1'" "negative retention"
expect_failure vv policy create bad --schedule daily --at 02:00 --target nope
assert_contains "$ERR" "target 'nope'" "unknown target"

vv policy create nightly --schedule daily --at 02:00 --max-chain 3 --retention 2 >/dev/null ||
    fail "policy create"
vv policy attach nightly "$dom" >/dev/null || fail "policy attach"
vv policy create other --schedule weekly --day sun --at 03:00 >/dev/null || fail "policy create other"
expect_failure vv policy attach other "$dom"
assert_contains "$ERR" "Instance is already attached to another backup policy" "second policy"
out=$(vv policy list)
assert_contains "$out" "Daily at 2:00 AM UTC" "policy card summary"
assert_contains "$out" "Instances: 1 ($dom)" "policy card instances"
vv policy delete other >/dev/null || fail "policy delete other"

runs () { vv policy runs nightly --json || fail "policy runs"; }
# advance DURATION : moves the clock; exactly one run must start, which is
# waited for; its record ends up in $RUN.
advance () {
    local before after bk job i
    before=$(runs | jq length)
    vv debug clock advance "$1" >/dev/null || fail "clock advance $1"
    after=$(runs | jq length)
    [ "$after" -eq $((before + 1)) ] || fail "advance $1: $((after - before)) runs started, expected 1"
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
    fail "run $(jq -c . <<<"$RUN") did not finish"
}

declare -A day_of
ids=()
for d in 1 2 3 4 5 6 7 8 9 10; do
    w "write -P $((d + 16)) $((d))M 64k"
    advance 1d
    assert_eq "$(jq -r .result <<<"$RUN")" ok "result of day $d ($(jq -r .message <<<"$RUN"))"
    bk=$(jq -r .backup_id <<<"$RUN")
    cp --sparse=always "$ref" "$VV_TMP/ref-$bk.raw"
    day_of[$bk]=$d
    ids+=("$bk")
    b=$(vv show "$bk" --json)
    case $d in 1|5|9) want=full ;; *) want=incremental ;; esac
    assert_eq "$(jq -r .type <<<"$b")" "$want" "type of day $d ($(jq -r .reason <<<"$b"))"
    assert_eq "$(jq -r .origin <<<"$b")" policy "origin of day $d"
    assert_eq "$(jq -r .policy <<<"$b")" nightly "policy of day $d"
    [ $d -eq 9 ] && assert_contains "$(jq -r .message <<<"$RUN")" "retention deleted 4 backups" "retention on day 9"
done

# Chains B (days 5-8) and C (days 9-10) remain, in the catalog ...
list=$(vv list "$dom" --json) || fail "list"
assert_eq "$(jq length <<<"$list")" 6 "backups left"
assert_eq "$(jq -r '[.[].id] | sort | join(" ")' <<<"$list")" \
    "$(printf '%s\n' "${ids[@]:4}" | sort | tr '\n' ' ' | sed 's/ $//')" "backups left are days 5-10"
assert_eq "$(jq -r '[.[].chain_id] | unique | length' <<<"$list")" 2 "chains left"
# ... and on the target.
uuid=$(jq -r '.[0].domain_uuid' <<<"$list")
assert_eq "$(ls "$VV_STATE/backups/$uuid" | wc -l)" 2 "chain directories on the target"
for id in "${ids[@]:0:4}"; do
    [ -z "$(find "$VV_STATE/backups/$uuid" -name "$id")" ] || fail "$id is still on the target"
done
for id in "${ids[@]:4}"; do
    [ -n "$(find "$VV_STATE/backups/$uuid" -type d -name "$id")" ] || fail "$id is missing on the target"
done

# Every point left restores to the disk as it was that day.
for id in "${ids[@]:4}"; do
    vv restore "$id" --to "$VV_TMP/r-$id" --format raw >/dev/null || fail "restore $id (day ${day_of[$id]})"
    "$QEMU_IMG" compare -q -f raw -F raw "$VV_TMP/ref-$id.raw" "$VV_TMP/r-$id/vda.raw" ||
        fail "restored $id (day ${day_of[$id]}) differs from the disk of that day"
    rm -rf "$VV_TMP/r-$id"
done
assert_eq "$(vv policy show nightly --json | jq -r .status)" active "status after 10 days"

# Missed while down: the daemon restarts three days later and runs once.
stop_daemon
start_daemon --test-clock=2026-12-07T01:30:00Z
n=$(runs | jq length)
for i in $(seq 1 100); do
    [ "$(runs | jq -r '.[0].result')" != running ] && [ "$(runs | jq length)" -gt 10 ] && break
    sleep 0.1
done
assert_eq "$(runs | jq length)" 11 "runs after the restart"
RUN=$(runs | jq '.[0]')
bk=$(jq -r .backup_id <<<"$RUN")
wait_job "$(vv show "$bk" --json | jq -r .job_id)" completed >/dev/null
assert_eq "$(jq -r .scheduled_for <<<"$RUN" | cut -c1-13)" "2026-12-06T02" "the missed run is the newest slot"
vv debug clock advance 20m >/dev/null || fail "advance 20m"
assert_eq "$(runs | jq length)" 11 "one run for three missed slots"

# A failing run: the target refuses writes.
chattr +i "$VV_STATE/backups/$uuid" "$VV_STATE/backups/$uuid"/* || fail "chattr +i"
w "write -P 0x70 12M 64k"
advance 1d
assert_eq "$(jq -r .result <<<"$RUN")" failed "result with an immutable target"
p=$(vv policy show nightly --json)
assert_eq "$(jq -r .status <<<"$p")" error "status after a failed run"
assert_contains "$(jq -r .last_error <<<"$p")" "failed" "last error"
assert_contains "$(vv policy list)" "Last error: run of $dom" "last error on the card"
# The retry after 5 minutes succeeds and returns the policy to active.
chattr -i "$VV_STATE/backups/$uuid" "$VV_STATE/backups/$uuid"/* || fail "chattr -i"
advance 6m
assert_eq "$(jq -r .result <<<"$RUN")" ok "result of the retry ($(jq -r .message <<<"$RUN"))"
assert_eq "$(vv policy show nightly --json | jq -r .status)" active "status after the retry"

# A stopped domain is skipped, with the reason.
virsh destroy "$dom" >/dev/null
advance 1d
assert_eq "$(jq -r .result <<<"$RUN")" skipped "result for a stopped domain"
assert_contains "$(jq -r .message <<<"$RUN")" "not" "reason of the skip"

# Detach and delete keep the backups.
n=$(vv list "$dom" --json | jq length)
out=$(vv policy detach "$dom") || fail "detach"
assert_contains "$out" "stay" "detach says the backups stay"
out=$(vv policy delete nightly) || fail "delete"
assert_contains "$out" "stay until deleted by hand" "delete says the backups stay"
assert_eq "$(vv list "$dom" --json | jq length)" "$n" "backups after detach and delete"
# Protected backups; purge deletes everything.
vv protect "${ids[9]}" >/dev/null || fail "protect"
assert_eq "$(vv show "${ids[9]}" --json | jq -r .protected)" true "protected flag"
expect_failure vv instance purge "$dom"
assert_contains "$ERR" "--yes" "purge asks for --yes"
vv instance purge "$dom" --yes >/dev/null || fail "purge"
assert_eq "$(vv list "$dom" --json | jq length)" 0 "backups after purge"
expect_failure vv debug clock set nonsense
exit 0
