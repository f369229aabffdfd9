#!/bin/bash
# The examples keep working: examples/api-backup.sh backs up a domain
# through the API, and the sample daemon config is accepted.
source "${abs_top_srcdir:-$(dirname "$0")/..}/tests/functions.sh"

dom=vvtest-ex-$$
make_domain "$dom" 32
guest_write "$dom" vda "write -P 0x42 0 1M"

# The sample config is valid (state dir and socket overridden).
start_daemon --config "$abs_top_srcdir/examples/virtvaultd.conf"

out=$("$abs_top_srcdir/examples/api-backup.sh" "$dom" "$VV_SOCK") || fail "api-backup.sh: $out"
id=$(sed -n 's/^backup \(bk-[0-9a-f]*\) started.*/\1/p' <<<"$out")
[ -n "$id" ] || fail "api-backup.sh did not say which backup it started: $out"
grep -q "^$id  full  completed" <<<"$out" || fail "api-backup.sh did not list the completed backup: $out"
assert_eq "$(vv show "$id" --json | jq -r .status)" completed "status of the example's backup"

# Bad arguments: a clear failure, not a hang.
expect_failure "$abs_top_srcdir/examples/api-backup.sh" "nosuch-$$" "$VV_SOCK"
assert_contains "$ERR" "nosuch-$$" "example's error message"
exit 0
