#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# One local user cannot starve the daemon (docs/api.md, "Limits"):
# - 10 000 refused requests from uid 65534, most with a body of almost
#   1 MiB of JSON (which json-c would turn into some 30 MiB of objects),
#   8 at a time: refused before the body is read, so the daemon's peak
#   memory barely grows; root's `virtvault list` answers within a second
#   during and after them; the catalog stays under the size docs/api.md
#   states (a user's failures are audited up to 30 an hour).
# - a user holding connections_per_uid connections gets 429 on the next
#   one, and root is still served.
source "${abs_top_srcdir:-$(dirname "$0")/..}/tests/functions.sh"

requires_cmd setpriv ss
nobody=65534
as_nobody () {
    setpriv --reuid=$nobody --regid=$nobody --clear-groups "$@"
}

cat > "$VV_TMP/vv.conf" <<EOF
connections_per_uid = 16
EOF
start_daemon --config "$VV_TMP/vv.conf"
pid=$VV_PID
[ "$(readlink "/proc/$pid/exe")" != "${BASH:-}" ] || fail "VV_PID is not the daemon"

hwm () { awk '/^VmHWM:/ { print $2 }' "/proc/$pid/status"; }       # KiB
catalog_bytes () { cat "$VV_STATE"/catalog.db* 2>/dev/null | wc -c; }
nobody_audit_rows () { sqlite3 "$VV_STATE/catalog.db" "SELECT count(*) FROM audit WHERE uid = $nobody"; }
list_ms () {  # root's `virtvault list`, in milliseconds
    local t0 t1
    t0=$(date +%s%N)
    vv list >/dev/null || fail "root's list failed"
    t1=$(date +%s%N)
    echo $(( (t1 - t0) / 1000000 ))
}

# Almost 1 MiB (under the old 1 MiB limit) of JSON with 500 000 values.
big=$VV_TMP/big.json
{ printf '{"domain": "x", "disks": ['; yes '0,' | head -n 500000 | tr -d '\n'; printf '0]}'; } > "$big"
size=$(stat -c %s "$big")
[ "$size" -gt 1000000 ] && [ "$size" -le 1048576 ] || fail "big body is $size bytes"
chmod 0644 "$big"

hwm0=$(hwm) cat0=$(catalog_bytes) audit0=$(nobody_audit_rows)
lines0=$(wc -l < "$VV_STATE/daemon.log")
echo "before: VmHWM ${hwm0} KiB, catalog ${cat0} bytes, list $(list_ms) ms"

# curl as nobody: N requests (a URL glob, the fragment is not sent), 8
# at a time; "status CODE" per request on stderr.
flood () {  # N METHOD PATH [curl args...]
    local n=$1 method=$2 path=$3; shift 3
    as_nobody curl -s --parallel --parallel-max 8 --unix-socket "$VV_SOCK" \
        -X "$method" -w '%{stderr}status %{http_code} exit %{exitcode}\n' "$@" \
        "http://localhost$path#[1-$n]" >/dev/null
}
codes=$VV_TMP/codes
t0=$(date +%s%N)
{
    flood 4000 POST /v1/backups -H 'Content-Type: application/json' --data-binary "@$big"
    flood 2000 POST /v1/policies -H 'Content-Type: application/json' --data-binary "@$big"
    flood 2000 POST /v1/backups/bk-000000000000/restore -H 'Content-Type: application/json' --data-binary "@$big"
    flood 2000 DELETE /v1/backups/bk-000000000000
} 2> "$codes.raw" &
flood_pid=$!
cleanup_fn "kill $flood_pid"

# Root is served while it runs.
worst=0 samples=0
while kill -0 $flood_pid 2>/dev/null; do
    ms=$(list_ms)
    [ "$ms" -gt "$worst" ] && worst=$ms
    samples=$((samples + 1))
    sleep 0.5
done
wait $flood_pid
t1=$(date +%s%N)
secs=$(( (t1 - t0) / 1000000000 ))

# (--parallel draws a progress meter on stderr even with -s.)
grep -o "status [0-9]* exit [0-9]*" "$codes.raw" | grep -v "exit 0" | sort | uniq -c
grep -o "status [0-9]*" "$codes.raw" | cut -d" " -f2 > "$codes"
total=$(wc -l < "$codes")
assert_eq "$total" 10000 "requests made"
summary=$(sort "$codes" | uniq -c | awk '{ printf "%s %s; ", $2, $1 }')
echo "10000 requests in ${secs} s: $summary"
assert_eq "$(grep -c '^403$' "$codes")" 4000 "403 for POST /v1/backups"
assert_eq "$(grep -c '^413$' "$codes")" 2000 "413 for a 1 MiB policy"
assert_eq "$(grep -c '^404$' "$codes")" 4000 "404 for restore and delete of someone else's (no) backup"

after=$(list_ms)
hwm1=$(hwm) cat1=$(catalog_bytes) audit1=$(nobody_audit_rows)
lines1=$(wc -l < "$VV_STATE/daemon.log")
echo "after: VmHWM ${hwm1} KiB (+$((hwm1 - hwm0))), catalog ${cat1} bytes (+$((cat1 - cat0))), list ${after} ms (worst of $samples during: ${worst} ms), audit rows of uid $nobody: $((audit1 - audit0)), log lines: $((lines1 - lines0))"

[ "$samples" -gt 0 ] || fail "no list during the flood"
[ "$worst" -lt 1000 ] || fail "root's list took ${worst} ms during the flood"
[ "$after" -lt 1000 ] || fail "root's list took ${after} ms after the flood"
[ $((hwm1 - hwm0)) -lt 65536 ] || fail "the daemon's peak memory grew by $((hwm1 - hwm0)) KiB (limit 64 MiB)"
# docs/api.md: at most 30 logged and audited failures per user and hour
# (and a line per hour saying how many were dropped).
hours=$(( secs / 3600 + 1 ))
[ $((audit1 - audit0)) -le $((30 * hours)) ] || fail "$((audit1 - audit0)) audit rows of uid $nobody in $hours hours"
[ $((lines1 - lines0)) -le $((31 * hours)) ] || fail "$((lines1 - lines0)) log lines in $hours hours"
# docs/api.md: 10 000 refused requests leave the catalog (file and WAL) under 4 MiB.
[ "$cat1" -lt $((4 * 1024 * 1024)) ] || fail "catalog and WAL are $cat1 bytes"

# ---- connections per uid ----
# Connections the daemon holds on its socket (accepted and not yet closed
# by it: a connection is uncounted before its socket is closed).
daemon_connections () { ss -xHn state connected src "$VV_SOCK" | wc -l; }
no_daemon_connections () { [ "$(daemon_connections)" -eq 0 ]; }
# The flood's last connections may still be counted: a holder would be
# refused for them.
wait_for 10 "the daemon closed the flood's connections ($(daemon_connections) open)" \
    no_daemon_connections

# 16 connections of nobody that send a chunked body and then wait.  No
# other connection of nobody is made until the daemon has accepted all
# of them (one made meanwhile would take a holder's place).
holders=()
for i in $(seq 1 16); do
    sleep 30 | as_nobody curl -sv -o /dev/null -w 'status %{http_code}\n' \
        --unix-socket "$VV_SOCK" -X POST -H 'Content-Type: application/json' \
        -H 'Expect: 100-continue' -T - http://localhost/v1/policies \
        > "$VV_TMP/holder$i.out" 2> "$VV_TMP/holder$i.err" &
    holders+=($!)
done
cleanup_fn "kill ${holders[*]}"
# A holder is counted and accepted when it gets "100 Continue" (counted
# when it connects; one over the limit is answered 429 instead).
holders_accepted () {
    local i n=0
    for i in $(seq 1 16); do
        if grep -q '^< HTTP/1.1 100' "$VV_TMP/holder$i.err"; then
            n=$((n + 1))
        elif [ -s "$VV_TMP/holder$i.out" ]; then
            fail "holder $i of 16 was answered $(cat "$VV_TMP/holder$i.out") before any other connection of nobody"
        fi
    done
    [ $n -eq 16 ]
}
wait_for 10 "16 connections of nobody accepted by the daemon" holders_accepted
assert_eq "$(daemon_connections)" 16 "connections the daemon holds"
# The 17th is refused.
out=$(as_nobody curl -s -w '\n%{http_code}' --unix-socket "$VV_SOCK" http://localhost/v1/policies)
assert_eq "${out##*$'\n'}" 429 "status of nobody's 17th connection"
assert_contains "$(jq -r .error.message <<<"${out%$'\n'*}")" "connections_per_uid" "message of the 429"
ms=$(list_ms)
[ "$ms" -lt 1000 ] || fail "root's list took ${ms} ms while nobody holds its connections"
for i in $(seq 1 16); do
    [ ! -s "$VV_TMP/holder$i.out" ] || fail "holder $i was answered $(cat "$VV_TMP/holder$i.out") while it held its connection"
done
kill "${holders[@]}" 2>/dev/null
pkill -P $$ -x sleep 2>/dev/null
exit 0
