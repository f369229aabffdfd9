#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The JSON API over the real socket: malformed or wrong requests get a
# clear 4xx error object and change nothing.
source "${abs_top_srcdir:-$(dirname "$0")/..}/tests/functions.sh"

start_daemon

# A backup that exists, so the checks of a restore's fields are reached
# (an unknown backup answers 404 before any field is looked at).
dom=vvtest-mal-$$
make_domain "$dom" 8
bk=$(vv backup "$dom" --wait) || fail "backup of $dom"

before_b=$(api GET /v1/backups) before_j=$(api GET /v1/jobs) before_t=$(api GET /v1/targets)

check () {  # METHOD PATH BODY STATUS CODE
    local body
    body=$(api "$1" "$2" "$3")
    assert_eq "$(http_status)" "$4" "HTTP status of $1 $2 '$3'"
    assert_eq "$(jq -r .error.code <<<"$body")" "$5" "error code of $1 $2 '$3'"
    [ -n "$(jq -r .error.message <<<"$body")" ] || fail "empty error message for $1 $2"
}

check POST /v1/backups '{"domain": "x"'             400 invalid
check POST /v1/backups '{"domain": "x"} trailing'   400 invalid
check POST /v1/backups '[1,2,3]'                    400 invalid
check POST /v1/backups 'not json at all'            400 invalid
check POST /v1/backups ''                           400 invalid
check POST /v1/backups '{"domain": 42}'             400 invalid
check POST /v1/backups "{'domain': 'x'}"            400 invalid
check POST /v1/backups '{"domian": "x"}'            400 invalid
check POST /v1/backups '{"domain": "x", "disks": "vda"}' 400 invalid
check POST /v1/backups '{"domain": "nosuch-'$$'"}'   404 not_found
check POST /v1/targets '{"name": "../etc", "url": "file:///tmp"}' 400 invalid
check POST /v1/targets '{"name": "t1", "url": "gopher://x/"}' 400 invalid
check POST /v1/targets '{"name": "t1"}'             400 invalid
check POST /v1/backups/bk-000000000000/restore '{"to": "/var/tmp/x"}' 404 not_found
check POST "/v1/backups/$bk/restore" '{"to": "relative/dir"}' 400 invalid
check POST "/v1/backups/$bk/restore" '{"to": "/var/tmp/x", "in_place": true}' 400 invalid
check GET  /v1/backups/bk-000000000000 ''           404 not_found
check GET  /v1/jobs/job-000000000000 ''             404 not_found
check GET  /v1/nosuch ''                            404 not_found
check DELETE /v1/jobs ''                            405 invalid

# A body over the 1 MiB limit is refused.
{ printf '{"domain": "'; head -c 1100000 /dev/zero | tr '\0' 'a'; printf '"}'; } > "$VV_TMP/big.json"
body=$(api POST /v1/backups "@$VV_TMP/big.json")
assert_eq "$(http_status)" 413 "oversized body"

# The messages are the ones a person needs.
msg=$(api POST /v1/backups '{"domain": "x"' | jq -r .error.message)
assert_contains "$msg" "JSON" "malformed JSON message"
msg=$(api POST /v1/backups '{"domian": "x"}' | jq -r .error.message)
assert_contains "$msg" "domian" "unknown field message"
msg=$(api POST "/v1/backups/$bk/restore" '{"to": "relative/dir"}' | jq -r .error.message)
assert_contains "$msg" "field 'to' of " "relative restore directory message"
assert_contains "$msg" "must be an absolute directory" "relative restore directory message"
[ ! -e "$VV_STATE/relative" ] && [ ! -e /relative ] || fail "a relative restore directory was created"

# Nothing changed.
assert_eq "$(api GET /v1/backups)" "$before_b" "backups after bad requests"
assert_eq "$(api GET /v1/jobs)" "$before_j" "jobs after bad requests"
assert_eq "$(api GET /v1/targets)" "$before_t" "targets after bad requests"

# The CLI prints the daemon's message on one line and exits 1; an
# unreachable socket exits 3 and says how to start the daemon.
expect_failure vv show bk-000000000000
assert_eq "$(echo "$ERR" | wc -l)" 1 "CLI error lines"
set +e
"$abs_top_builddir/virtvault" --socket "$VV_TMP/none.sock" list >/dev/null 2>"$VV_TMP/err"
st=$?

assert_eq "$st" 3 "exit status without a daemon"
assert_contains "$(cat "$VV_TMP/err")" "virtvaultd" "message without a daemon"
exit 0
