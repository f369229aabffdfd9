#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The socket as the daemon lays it out: its directory does not exist
# before the daemon starts (as /run/virtvault after a boot), the daemon
# makes it 0755 and the socket 0666 whatever its umask, so a non-root
# user can connect; what that user may then do is decided by the daemon
# from SO_PEERCRED: only their own policies, someone else's answers like
# one that does not exist, admin-only calls answer 403.
#
# Not the real /run/virtvault: other tests run daemons at the same time.
# start_daemon puts the socket in a directory under the scratch space
# that only the daemon creates (tests/functions.sh).
source "${abs_top_srcdir:-$(dirname "$0")/..}/tests/functions.sh"

requires_cmd setpriv stat
nobody=65534
as_nobody () {
    setpriv --reuid=$nobody --regid=$nobody --clear-groups "$@"
}
vv_nobody () {
    as_nobody "$abs_top_builddir/virtvault" --socket "$VV_SOCK" "$@"
}

sockdir=$(dirname "$VV_TMP/run/state/x")
[ ! -e "$sockdir" ] || fail "$sockdir exists before the daemon starts"
start_daemon
assert_eq "$(dirname "$VV_SOCK")" "$sockdir" "socket directory"
assert_eq "$(stat -c %a "$sockdir")" 755 "mode of the socket directory the daemon made"
assert_eq "$(stat -c %a "$VV_TMP/run")" 755 "mode of its parent, also made by the daemon"
assert_eq "$(stat -c %a "$VV_SOCK")" 666 "mode of the socket"

# Root's policy, and one root makes for nobody.
vv policy create rootp --schedule daily --at 03:00 >/dev/null || fail "policy create rootp"
api POST /v1/policies '{"name": "nobodyp", "schedule": "daily", "at": "04:00", "owner_uid": 65534}' >/dev/null
assert_eq "$(http_status)" 201 "root creates a policy for uid 65534"

# nobody connects through the daemon's directory and sees its own only.
out=$(vv_nobody policy list --json) || fail "nobody cannot list policies: $out"
assert_eq "$(jq -r 'map(.name) | join(",")' <<<"$out")" nobodyp "policies nobody sees"
vv_nobody policy create mine --schedule daily --at 05:00 >/dev/null || fail "nobody cannot create its own policy"
assert_eq "$(vv_nobody policy list --json | jq -r 'map(.name) | sort | join(",")')" "mine,nobodyp" "policies nobody sees after creating one"
assert_eq "$(vv policy list --json | jq -r 'map(.name) | sort | join(",")')" "mine,nobodyp,rootp" "policies root sees"
assert_eq "$(vv policy show mine --json | jq -r .owner_uid)" 65534 "owner of nobody's new policy"

# Root's policy answers exactly like one that does not exist.
expect_failure vv_nobody policy show rootp
err_root=${ERR//rootp/NAME}
expect_failure vv_nobody policy show nosuch
assert_eq "$err_root" "${ERR//nosuch/NAME}" "root's policy as seen by nobody vs. a missing one"
expect_failure vv_nobody policy delete rootp
vv policy show rootp >/dev/null || fail "nobody deleted root's policy"

# Admin-only endpoints: 403, decided by the daemon.
st=$(as_nobody curl -s -o /dev/null -w '%{http_code}' --unix-socket "$VV_SOCK" http://localhost/v1/targets) ||
    fail "curl as nobody"
assert_eq "$st" 403 "GET /v1/targets as nobody"
exit 0
