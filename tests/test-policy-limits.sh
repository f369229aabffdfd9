#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Policy limits against a real daemon and domains, driven by the test clock:
# - scheduler_max_concurrent = 1: three instances due at the same time run
#   one after the other (never two jobs at once), and all three complete;
# - policy pause: nothing runs and nothing is recorded while paused, however
#   many slots pass; resume runs the newest missed slot once at once
#   (docs/scheduling.md, "Pause and resume"), then the schedule again;
# - --max-backups 4 (max chain 1, retention 100): whole chains go, oldest
#   first, on the target and in the catalog; never more than 4 remain, and
#   no backup is left without its parent.
source "${abs_top_srcdir:-$(dirname "$0")/..}/tests/functions.sh"

doma=vvtest-lma-$$
domb=vvtest-lmb-$$
domc=vvtest-lmc-$$
for d in "$doma" "$domb" "$domc"; do
    make_domain "$d" 16
done

# One scheduled job at a time; enough workers that only the scheduler's
# limit can serialise them.
cat > "$VV_TMP/vv.conf" <<EOF
scheduler_max_concurrent = 1
workers = 3
EOF
start_daemon --config "$VV_TMP/vv.conf" --test-clock=2026-11-24T01:30:00Z

runs () { vv policy runs "$1" --json || fail "policy runs $1"; }
# wait_runs POLICY N : until POLICY has N runs, none of them running.
wait_runs () {
    local i r
    for i in $(seq 1 600); do
        r=$(runs "$1")
        [ "$(jq length <<<"$r")" -ge "$2" ] &&
            jq -e 'all(.[]; .result != "running")' <<<"$r" >/dev/null && return 0
        sleep 0.1
    done
    fail "policy $1: $(jq length <<<"$r") runs (expected $2) or one still running: $(jq -c . <<<"$r")"
}
# advance POLICY DURATION : exactly one run must start; waits for it; its
# record ends up in $RUN.
advance () {
    local before after
    before=$(runs "$1" | jq length)
    vv debug clock advance "$2" >/dev/null || fail "clock advance $2"
    after=$(runs "$1" | jq length)
    [ "$after" -eq $((before + 1)) ] || fail "advance $2: $((after - before)) runs of $1, expected 1"
    wait_runs "$1" "$after"
    RUN=$(runs "$1" | jq '.[0]')
}
no_orphans () {
    local list p
    list=$(vv list "$1" --json) || fail "list $1"
    for p in $(jq -r '.[] | select(.parent_id != null) | .parent_id' <<<"$list"); do
        jq -e --arg p "$p" 'any(.[]; .id == $p)' <<<"$list" >/dev/null ||
            fail "parent $p of a backup of $1 is not in the catalog"
    done
}
sorted () { printf '%s\n' "$@" | sort | tr '\n' ' ' | sed 's/ $//'; }

# ---- 1. scheduler_max_concurrent = 1 ----
# Some data on each disk, so that each job has something to copy.
for d in "$doma" "$domb" "$domc"; do
    guest_write "$d" vda "write -P 0x5a 0 12M"
done
vv policy create conc --schedule daily --at 02:00 --max-chain 0 >/dev/null || fail "policy create conc"
for d in "$doma" "$domb" "$domc"; do
    vv policy attach conc "$d" >/dev/null || fail "attach conc $d"
done
log_from=$(wc -l <"$VV_STATE/daemon.log")
vv debug clock advance 1d >/dev/null || fail "clock advance 1d"
# The limit holds back two of the three due runs; they start as slots free.
wait_runs conc 3
r=$(runs conc)
assert_eq "$(jq length <<<"$r")" 3 "runs of conc"
assert_eq "$(jq -r '[.[].result] | unique | join(" ")' <<<"$r")" ok "results of conc ($(jq -c '[.[].message]' <<<"$r"))"
assert_eq "$(jq -r '[.[].domain] | sort | join(" ")' <<<"$r")" "$(sorted "$doma" "$domb" "$domc")" "domains of conc"
jobs=$(vv job list --json) || fail "job list"
mine=$(jq --argjson r "$r" '[.[] | select(.backup_id as $b | any($r[]; .backup_id == $b))] | sort_by(.started_at)' <<<"$jobs")
assert_eq "$(jq length <<<"$mine")" 3 "jobs of conc"
assert_eq "$(jq -r '[.[].status] | unique | join(" ")' <<<"$mine")" completed "status of the jobs of conc"
# The test clock stands still, so these times are equal at best; ...
jq -e '[range(1; length) as $i | .[$i].started_at >= .[$i - 1].finished_at] | all' <<<"$mine" >/dev/null ||
    fail "jobs of conc overlap: $(jq -c '[.[] | {id, started_at, finished_at}]' <<<"$mine")"
# ... the daemon log shows the order: each job completes before the next
# one starts.
seq_=$(tail -n +"$((log_from + 1))" "$VV_STATE/daemon.log" |
       sed -n "s/.*: job \([^ ]*\) \(started\|completed\): backup .* for policy 'conc'$/\2 \1/p")
starts=$(awk '$1 == "started" {print $2}' <<<"$seq_")
assert_eq "$(wc -l <<<"$starts")" 3 "job starts logged ($seq_)"
expect=$(for j in $starts; do printf 'started %s\ncompleted %s\n' "$j" "$j"; done)
assert_eq "$seq_" "$expect" "jobs of conc run one at a time"
vv policy delete conc >/dev/null || fail "policy delete conc"

# ---- 2. pause and resume ----
# The clock is at 2026-11-25T01:30Z.
vv policy create pz --schedule daily --at 03:00 --max-chain 0 >/dev/null || fail "policy create pz"
vv policy attach pz "$doma" >/dev/null || fail "attach pz"
vv policy pause pz >/dev/null || fail "policy pause"
p=$(vv policy show pz --json)
assert_eq "$(jq -r .status <<<"$p")" paused "status after pause"
assert_eq "$(jq -r '.instances[0].next_run' <<<"$p")" null "next run while paused"
n_a=$(vv list "$doma" --json | jq length)
# (A clock advance answers after a whole scheduler pass at the new time:
# a run that became due exists by then, so no waiting is needed to see
# that none did.)
vv debug clock advance 1d >/dev/null || fail "clock advance 1d"
vv debug clock advance 1d >/dev/null || fail "clock advance 1d"
assert_eq "$(runs pz | jq length)" 0 "runs while paused (two slots passed)"
assert_eq "$(vv list "$doma" --json | jq length)" "$n_a" "backups while paused"
assert_eq "$(vv job list --json | jq '[.[] | select(.status == "running" or .status == "queued")] | length')" 0 "jobs while paused"
# Resume at 2026-11-27T01:30Z: the newest missed slot runs once, at once.
vv policy resume pz >/dev/null || fail "policy resume"
assert_eq "$(vv policy show pz --json | jq -r .status)" active "status after resume"
wait_runs pz 1
RUN=$(runs pz | jq '.[0]')
assert_eq "$(runs pz | jq length)" 1 "runs after resume"
assert_eq "$(jq -r .scheduled_for <<<"$RUN")" 2026-11-26T03:00:00Z "the run after resume is the newest missed slot"
assert_eq "$(jq -r .result <<<"$RUN")" ok "result of the run after resume ($(jq -r .message <<<"$RUN"))"
# Then the schedule again: the next slot, once.
advance pz 1d
assert_eq "$(jq -r .scheduled_for <<<"$RUN")" 2026-11-27T03:00:00Z "the next slot after resume"
assert_eq "$(jq -r .result <<<"$RUN")" ok "result of the next slot ($(jq -r .message <<<"$RUN"))"
assert_eq "$(vv list "$doma" --json | jq length)" $((n_a + 2)) "backups after resume"
vv policy delete pz >/dev/null || fail "policy delete pz"

# ---- 3. max backups 4, max chain 1 ----
vv policy create cap --schedule daily --at 04:00 --max-chain 1 --retention 100 \
    --max-backups 4 >/dev/null || fail "policy create cap"
assert_eq "$(vv policy show cap --json | jq -r .max_backups)" 4 "max_backups of cap"
vv policy attach cap "$domb" >/dev/null || fail "attach cap"
auto_of () {  # DOMAIN : ids of the automatic backups of cap, sorted
    vv list "$1" --json | jq -r '[.[] | select(.policy == "cap") | .id] | sort | join(" ")'
}
ids=()
for d in 1 2 3 4 5 6 7 8; do
    guest_write "$domb" vda "write -P $((0x60 + d)) ${d}M 64k"
    advance cap 1d
    assert_eq "$(jq -r .result <<<"$RUN")" ok "cap day $d ($(jq -r .message <<<"$RUN"))"
    bk=$(jq -r .backup_id <<<"$RUN")
    ids+=("$bk")
    case $d in 1|3|5|7) t=full ;; *) t=incremental ;; esac
    assert_eq "$(vv show "$bk" --json | jq -r .type)" $t "type on cap day $d"
    # Chains of two: the oldest whole chain goes when a 5th backup appears.
    case $d in 1|2|3|4) from=0 ;; 5|6) from=2 ;; *) from=4 ;; esac
    case $d in 5|7) assert_contains "$(jq -r .message <<<"$RUN")" "max backups" "reason on cap day $d" ;; esac
    assert_eq "$(auto_of "$domb")" "$(sorted "${ids[@]:$from}")" "backups of cap after day $d"
    no_orphans "$domb"
done
assert_eq "$(auto_of "$domb" | wc -w)" 4 "backups of cap after 8 days"
list=$(vv list "$domb" --json)
uuid=$(jq -r '.[0].domain_uuid' <<<"$list")
for id in "${ids[@]:0:4}"; do
    [ -z "$(find "$VV_STATE/backups/$uuid" -name "$id")" ] || fail "$id is still on the target"
done
for id in "${ids[@]:4}"; do
    [ -n "$(find "$VV_STATE/backups/$uuid" -type d -name "$id")" ] || fail "$id is missing on the target"
done
# Two chains remain, each a full and its incremental.
assert_eq "$(jq -r '[.[] | select(.policy == "cap") | .chain_id] | unique | length' <<<"$list")" 2 "chains of cap left"
exit 0
