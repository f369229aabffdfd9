#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The default target: the daemon config's default_target until an admin
# marks a target the default (virtvault target set-default, POST
# /v1/targets/NAME/default), kept in the catalog across restarts; target
# list shows it; a manual backup without --target and a policy without a
# target use it; it cannot be removed; users are refused as for every
# target endpoint; each change is audited.
source "${abs_top_srcdir:-$(dirname "$0")/..}/tests/functions.sh"
requires_cmd setpriv sqlite3

dom=vvtest-tdef-$$
make_domain "$dom" 8
start_daemon --test-clock=2026-11-24T01:30:00Z

default_of () { vv target list --json | jq -r 'map(select(.default)) | map(.name) | join(",")'; }

# Before any choice: the config's default_target ('local').
assert_eq "$(default_of)" local "default before any choice"
out=$(vv target list) || fail "target list"
assert_contains "$(head -1 <<<"$out")" DEFAULT "target list has a DEFAULT column"
assert_eq "$(awk '$1 == "local" { print $2 }' <<<"$out")" yes "local marked in the table"

mkdir -p "$VV_TMP/nas"
vv target add nas --url "file://$VV_TMP/nas" >/dev/null || fail "target add nas"
assert_eq "$(vv target list --json | jq -r '.[] | select(.name=="nas") | .default')" false "a new target is not the default"

# A user is refused as for every target endpoint, before the body is read.
nobody=65534
user_api () {
    setpriv --reuid=$nobody --regid=$nobody --clear-groups \
        curl -sS --unix-socket "$VV_SOCK" -X POST -w '\n%{http_code}' \
        "http://localhost/v1/targets/$1/default"
}
out=$(user_api nas) || fail "curl as uid $nobody"
assert_eq "${out##*$'\n'}" 403 "set-default by a user"
assert_contains "$out" "managing targets is for administrators only" "user refusal in the words of the other target endpoints"
out=$(user_api nosuch) || fail "curl as uid $nobody"
assert_eq "${out##*$'\n'}" 403 "set-default of an unknown target by a user"
assert_eq "$(default_of)" local "a refused call changed nothing"

expect_failure vv target set-default nosuch
assert_contains "$ERR" "no target named 'nosuch'" "unknown target"

out=$(vv target set-default nas) || fail "target set-default nas"
assert_eq "$out" "Target nas is the default target now" "set-default output"
assert_eq "$(default_of)" nas "nas is the default"
assert_eq "$(api GET /v1/targets/nas | jq -r .default)" true "GET of the target says default"
assert_eq "$(api GET /v1/targets/local | jq -r .default)" false "local is no longer the default"
j=$(api POST /v1/targets/nas/default) || fail "set-default again"
assert_eq "$(http_status)" 200 "set-default of the default again"
assert_eq "$(jq -r '.name + " " + (.default | tostring)' <<<"$j")" "nas true" "API answer is the target"
assert_eq "$(default_of)" nas "still exactly one default"

# Audited: who, what, on what, and what the default was.
row=$(sqlite3 -separator '|' "$VV_STATE/catalog.db" \
      "SELECT uid, action, object, result, detail FROM audit WHERE action = 'target.default' AND result = 'ok' ORDER BY id LIMIT 1")
assert_eq "$row" "0|target.default|nas|ok|default target was 'local'" "audit row of set-default"
assert_eq "$(sqlite3 "$VV_STATE/catalog.db" "SELECT count(*) FROM audit WHERE action = 'target.default' AND uid = $nobody AND result = 'forbidden'")" 2 "refused calls audited"

# Removing the default is refused with what to do; the other one may go.
expect_failure vv target remove nas
assert_contains "$ERR" "target 'nas' is the default target; make another target the default first" "remove the default"

# A manual backup without --target goes to the default.
id=$(vv backup "$dom" --wait) || fail "backup without --target"
assert_eq "$(vv show "$id" --json | jq -r .target)" nas "manual backup on the default target"
[ -n "$(target_files "$VV_TMP/nas")" ] || fail "nothing stored on nas"

# A policy without a target too (and the card says so).
vv policy create nightly --schedule daily --at 02:00 >/dev/null || fail "policy create"
assert_eq "$(vv policy show nightly --json | jq -r .target)" null "policy without a target"
vv policy attach nightly "$dom" >/dev/null || fail "policy attach"
vv debug clock advance 1h >/dev/null || fail "clock advance"
bk=$(vv policy runs nightly --json | jq -r '.[0].backup_id')
[ -n "$bk" ] && [ "$bk" != null ] || fail "no policy run started"
wait_job "$(vv show "$bk" --json | jq -r .job_id)" completed >/dev/null
assert_eq "$(vv show "$bk" --json | jq -r .target)" nas "policy backup on the default target"
vv policy detach "$dom" >/dev/null || fail "policy detach"

# The catalog's choice outlives a restart; the config's default_target
# then only needs to exist while no target is marked.
stop_daemon
cat > "$VV_TMP/vv.conf" <<EOF
default_target = gone
EOF
start_daemon --config "$VV_TMP/vv.conf" --test-clock=2026-11-25T01:30:00Z
assert_eq "$(default_of)" nas "default kept in the catalog across a restart"

# Back to local: nas can now be removed once its backups are gone.
vv target set-default local >/dev/null || fail "set-default local"
assert_eq "$(default_of)" local "local is the default again"
vv delete "$bk" >/dev/null || fail "delete $bk"
vv delete "$id" >/dev/null || fail "delete $id"
vv target remove nas >/dev/null || fail "remove nas once it is not the default"
exit 0
