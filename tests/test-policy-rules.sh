#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Policy rules against a real daemon and domains, driven by the test clock:
# - the manual limit (manual_limit = 2 through --config): a new manual
#   backup replaces the oldest unprotected one, on the target and in the
#   catalog; a protected one is never deleted; an incremental's parent is
#   never orphaned;
# - costs: monthly = stored GB (10^9 bytes) x price, hourly = monthly / 730,
#   per backup and per instance;
# - a weekly policy (Monday, max chain 2) over 15 days: full on Mondays,
#   incrementals while the chain has room, a new full when it is full;
# - keep rules + max age (1d:7, 3d, retention 1): what remains, no orphan,
#   every remaining point restores;
# - a 2h window: every run starts in [at, at+2h), at the same offset;
# - bad policy input: exit status, a message naming the field, nothing created.
source "${abs_top_srcdir:-$(dirname "$0")/..}/tests/functions.sh"

doma=vvtest-rla-$$
domb=vvtest-rlb-$$
make_domain "$doma" 16
make_domain "$domb" 16
refa=$VV_TMP/refa.raw
refb=$VV_TMP/refb.raw
truncate -s 16M "$refa" "$refb"
wa () { guest_write "$doma" vda "$1"; ref_write "$refa" "$1"; }
wb () { guest_write "$domb" vda "$1"; ref_write "$refb" "$1"; }

cat > "$VV_TMP/vv.conf" <<EOF
manual_limit = 2
EOF
start_daemon --config "$VV_TMP/vv.conf" --test-clock=2026-11-29T04:00:00Z

on_target () {  # DIR ID : true when the backup's directory exists on the target
    [ -n "$(find "$1" -type d -name "$2")" ]
}
# check_restore ID REF : the backup restores to the image REF
check_restore () {
    vv restore "$1" --to "$VV_TMP/r-$1" --format raw >/dev/null || fail "restore $1"
    "$QEMU_IMG" compare -q -f raw -F raw "$2" "$VV_TMP/r-$1/vda.raw" ||
        fail "restored $1 differs from its reference"
    rm -rf "$VV_TMP/r-$1"
}
# no_orphans DOMAIN : every backup's parent is still in the catalog
no_orphans () {
    local list p
    list=$(vv list "$1" --json) || fail "list $1"
    for p in $(jq -r '.[] | select(.parent_id != null) | .parent_id' <<<"$list"); do
        jq -e --arg p "$p" 'any(.[]; .id == $p)' <<<"$list" >/dev/null ||
            fail "parent $p of a backup of $1 is not in the catalog"
    done
}

# ---- 6. bad input: exit status 1 or 2, the field named, nothing created ----
bad () {  # NEEDLE ARGS...
    local needle=$1 rc; shift
    vv policy create bad "$@" >/dev/null 2>"$VV_TMP/err"; rc=$?
    [ $rc -eq 1 ] || [ $rc -eq 2 ] || fail "policy create bad $*: exit status $rc, expected 1 or 2"
    assert_contains "$(cat "$VV_TMP/err")" "$needle" "policy create bad $*"
}
bad "unknown timezone 'Mars/Olympus'" --schedule daily --at 02:00 --tz Mars/Olympus
bad "hour 25" --schedule daily --at 25:00
bad "minute 60" --schedule daily --at 02:60
bad "--day is only valid for weekly" --schedule daily --at 02:00 --day mon
bad "needs --day" --schedule weekly --at 02:00
bad "retention '-1'" --schedule daily --at 02:00 --retention -1
bad "max chain" --schedule daily --at 02:00 --max-chain -1
bad "max backups" --schedule daily --at 02:00 --max-backups -3
bad "target 'nope'" --schedule daily --at 02:00 --target nope
bad "window 25h" --schedule daily --at 02:00 --window 25h
bad "keep rule '1q:3'" --schedule daily --at 02:00 --keep 1q:3
bad "max age" --schedule daily --at 02:00 --max-age 6M
assert_eq "$(vv policy list --json | jq length)" 0 "policies after bad input"
expect_failure vv policy show bad

# ---- 1. manual limit 2, and 2. costs ----
price=250
mkdir -p "$VV_TMP/priced" && chmod 0755 "$VV_TMP/priced"
vv target add priced --url "file://$VV_TMP/priced" --price-per-gb-month $price >/dev/null ||
    fail "target add priced"
# ARGS... : a manual backup of doma on 'priced'; prints its id.  The
# test clock stands still, so these backups share one created_at second:
# their creation order must still decide which is oldest.
mb () {
    vv backup "$doma" --wait --target priced "$@" || fail "backup $*"
}
wa "write -P 0x11 1M 64k"; m1=$(mb --full)
wa "write -P 0x12 2M 64k"; m2=$(mb --full)
wa "write -P 0x13 3M 64k"; m3=$(mb --full)
# The third replaced the first, in the catalog and on the target.
list=$(vv list "$doma" --json)
assert_eq "$(jq -r '[.[].id] | sort | join(" ")' <<<"$list")" \
    "$(printf '%s\n' "$m2" "$m3" | sort | tr '\n' ' ' | sed 's/ $//')" "manual backups after the 3rd"
! on_target "$VV_TMP/priced" "$m1" || fail "$m1 is still on the target"
on_target "$VV_TMP/priced" "$m2" || fail "$m2 is missing on the target"
# A protected backup is never deleted, and does not count.
vv protect "$m2" >/dev/null || fail "protect $m2"
wa "write -P 0x14 4M 64k"; m4=$(mb --full)
wa "write -P 0x15 5M 64k"; m5=$(mb --incremental)
list=$(vv list "$doma" --json)
assert_eq "$(jq -r '[.[].id] | sort | join(" ")' <<<"$list")" \
    "$(printf '%s\n' "$m2" "$m4" "$m5" | sort | tr '\n' ' ' | sed 's/ $//')" "manual backups after the 5th"
on_target "$VV_TMP/priced" "$m2" || fail "protected $m2 was deleted on the target"
! on_target "$VV_TMP/priced" "$m3" || fail "$m3 is still on the target"
p=$(mb --json --incremental --protect)
wa "write -P 0x16 6M 64k"
m6=$(mb --incremental)
cp --sparse=always "$refa" "$VV_TMP/ref-m6.raw"
wa "write -P 0x17 7M 64k"; m7=$(mb --incremental)
# m4 (full) and m5 fall outside the limit, but the protected incremental
# and m6, m7 are based on them: nothing is orphaned, the limit is exceeded.
list=$(vv list "$doma" --json)
mp=$(jq -r '[.[] | select(.protected and .id != "'"$m2"'")] | .[0].id' <<<"$list")
[ "$mp" != null ] || fail "backup --protect made no protected backup: $p"
assert_eq "$(jq -r '[.[].id] | sort | join(" ")' <<<"$list")" \
    "$(printf '%s\n' "$m2" "$m4" "$m5" "$mp" "$m6" "$m7" | sort | tr '\n' ' ' | sed 's/ $//')" \
    "manual backups with an incremental chain"
assert_eq "$(vv show "$m7" --json | jq -r .parent_id)" "$m6" "parent of $m7"
no_orphans "$doma"
for id in "$m4" "$m5" "$mp" "$m6" "$m7"; do
    on_target "$VV_TMP/priced" "$id" || fail "$id is missing on the target"
done
check_restore "$m6" "$VV_TMP/ref-m6.raw"
check_restore "$m7" "$refa"

# Costs: 10^9 bytes per GB; monthly rounded to 4 decimals, hourly
# (monthly / 730, from the unrounded monthly) to 6.
cost_ok () {  # JSON BYTES : the JSON's monthly_cost and hourly_cost fit BYTES
    jq -e --argjson b "$2" --argjson p $price '
        def r(n): (. * n + 0.5 | floor) / n;
        ($b / 1e9 * $p) as $m
        | ((.monthly_cost - ($m | r(10000))) | fabs) < 1e-9
          and ((.hourly_cost - ($m / 730 | r(1000000))) | fabs) < 1e-9' <<<"$1" >/dev/null
}
total=0
for id in $(jq -r '.[].id' <<<"$list"); do
    b=$(vv show "$id" --json)
    sz=$(jq .size_bytes <<<"$b")
    [ "$sz" -gt 0 ] || fail "size of $id"
    cost_ok "$b" "$sz" || fail "costs of $id (size $sz, price $price): $(jq -c '{monthly_cost,hourly_cost}' <<<"$b")"
    total=$((total + sz))
done
inst=$(api GET /v1/instances | jq --arg d "$doma" '.[] | select(.name == $d)')
assert_eq "$(jq .size_bytes <<<"$inst")" "$total" "instance stored bytes"
cost_ok "$inst" "$total" || fail "instance costs (size $total): $(jq -c . <<<"$inst")"
assert_contains "$(vv instance list)" "$doma" "instance list"
# The default target has no price: no costs.
assert_eq "$(vv target list --json | jq -r '.[] | select(.name == "local") | .price_per_gb_month')" 0 "price of local"

# ---- 3. weekly on Monday, max chain 2, over 15 days ----
runs () { vv policy runs "$1" --json || fail "policy runs $1"; }
# advance POLICY DURATION : exactly one run must start; waits for it; its
# record ends up in $RUN.
advance () {
    local before after bk job i
    before=$(runs "$1" | jq length)
    vv debug clock advance "$2" >/dev/null || fail "clock advance $2"
    after=$(runs "$1" | jq length)
    [ "$after" -eq $((before + 1)) ] || fail "advance $2: $((after - before)) runs of $1, expected 1"
    bk=$(runs "$1" | jq -r '.[0].backup_id')
    if [ "$bk" != null ]; then
        job=$(vv show "$bk" --json | jq -r .job_id) || fail "show $bk"
        wait_job "$job" completed failed cancelled >/dev/null
    fi
    for i in $(seq 1 200); do
        RUN=$(runs "$1" | jq '.[0]')
        [ "$(jq -r .result <<<"$RUN")" != running ] && return 0
        sleep 0.05
    done
    fail "run $(jq -c . <<<"$RUN") did not finish"
}

vv policy create wk --schedule weekly --day mon --at 03:00 --max-chain 2 --retention 10 >/dev/null ||
    fail "policy create wk"
assert_contains "$(vv policy list)" "Weekly on Monday at 3:00 AM UTC" "weekly card"
vv policy attach wk "$doma" >/dev/null || fail "attach wk"
# Sun Nov 29 04:00 -> Mon Nov 30 .. Mon Dec 14.
want=(full incremental incremental full incremental incremental full
      full incremental incremental full incremental incremental full full)
wids=()
for d in $(seq 0 14); do
    wa "write -P $((0x20 + d)) $((d % 14))M 64k"
    advance wk 1d
    assert_eq "$(jq -r .result <<<"$RUN")" ok "weekly day $d ($(jq -r .message <<<"$RUN"))"
    bk=$(jq -r .backup_id <<<"$RUN")
    b=$(vv show "$bk" --json)
    assert_eq "$(jq -r .type <<<"$b")" "${want[$d]}" "type on weekly day $d ($(jq -r .created_at <<<"$b"), $(jq -r .reason <<<"$b"))"
    assert_eq "$(jq -r .target <<<"$b")" local "target on weekly day $d"
    [ "$(jq -r .scheduled_for <<<"$RUN" | cut -c12-16)" = 03:00 ] || fail "weekly run time $(jq -r .scheduled_for <<<"$RUN")"
    wids+=("$bk")
done
for d in 0 7 14; do
    assert_eq "$(date -u -d "$(vv show "${wids[$d]}" --json | jq -r .created_at)" +%a)" Mon "weekday of day $d"
done
no_orphans "$doma"
assert_eq "$(vv show "${wids[12]}" --json | jq -r .parent_id)" "${wids[11]}" "parent of day 12"
check_restore "${wids[14]}" "$refa"
vv policy delete wk >/dev/null || fail "policy delete wk"

# ---- 4. keep 1d:7 + max age 3d + retention 1, and 5. a 2h window ----
vv debug clock set 2026-12-20T04:30:00Z >/dev/null || fail "clock set"
vv policy create dly --schedule daily --at 02:00 --window 2h --max-chain 1 --retention 1 \
    --keep 1d:7 --max-age 3d >/dev/null || fail "policy create dly"
assert_eq "$(vv policy show dly --json | jq -r .window_minutes)" 120 "window of dly"
vv policy attach dly "$domb" >/dev/null || fail "attach dly"
declare -A ref_of
dids=()
for d in 1 2 3 4 5 6 7; do
    wb "write -P $((0x40 + d)) ${d}M 64k"
    # The last step ends at 16:30, past the cut-off of day 4's 04:30 backup.
    if [ $d -eq 7 ]; then advance dly 36h; else advance dly 1d; fi
    assert_eq "$(jq -r .result <<<"$RUN")" ok "daily day $d ($(jq -r .message <<<"$RUN"))"
    bk=$(jq -r .backup_id <<<"$RUN")
    cp --sparse=always "$refb" "$VV_TMP/ref-$bk.raw"
    ref_of[$bk]=$VV_TMP/ref-$bk.raw
    dids+=("$bk")
    case $d in 1|3|5|7) t=full ;; *) t=incremental ;; esac
    assert_eq "$(vv show "$bk" --json | jq -r .type)" $t "type on daily day $d"
done
# Window: slot 02:00 + a fixed offset in [0, 2h), the same every day.
sched=$(runs dly | jq -r '.[].scheduled_for')
offs=$(for s in $sched; do echo $(( $(date -u -d "$s" +%s) % 86400 - 7200 )); done | sort -u)
assert_eq "$(wc -l <<<"$offs")" 1 "one offset for every run ($sched)"
[ "$offs" -ge 0 ] && [ "$offs" -lt 7200 ] || fail "run offset ${offs}s is outside [0, 2h)"
jq -e 'all(.[]; .started_at >= .scheduled_for)' <<<"$(runs dly)" >/dev/null ||
    fail "a run started before its time"
# Max age 3d at Dec 27 16:30: days 1-4 (Dec 21-24 04:30) go, the newest
# (day 7) and the chain of days 5-6 stay, whatever keep 1d:7 says.
list=$(vv list "$domb" --json)
assert_eq "$(jq -r '[.[].id] | sort | join(" ")' <<<"$list")" \
    "$(printf '%s\n' "${dids[@]:4}" | sort | tr '\n' ' ' | sed 's/ $//')" "backups left are days 5-7"
no_orphans "$domb"
uuid=$(jq -r '.[0].domain_uuid' <<<"$list")
for id in "${dids[@]:0:4}"; do
    ! on_target "$VV_STATE/backups/$uuid" "$id" || fail "$id is still on the target"
done
for id in "${dids[@]:4}"; do
    on_target "$VV_STATE/backups/$uuid" "$id" || fail "$id is missing on the target"
    check_restore "$id" "${ref_of[$id]}"
done
exit 0
