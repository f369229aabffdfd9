#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# virtvault target add | list | test | remove, through the CLI and the
# daemon, with the file plugin.
source "${abs_top_srcdir:-$(dirname "$0")/..}/tests/functions.sh"

# The suite's version 2 test plugin (v2://, tests/test-bad-plugin.c)
# declares "password" and "token" secret.
[ -e "$abs_top_builddir/tests/.libs/virtvault-v2-plugin.so" ] ||
    fail "missing component: tests/.libs/virtvault-v2-plugin.so (run through make check)"
VIRTVAULT_PLUGIN_PATH=$abs_top_builddir/tests/.libs start_daemon

# The default target lives in the state directory.
t=$(vv target list --json) || fail "target list"
assert_eq "$(jq -r '.[] | select(.name=="local") | .url' <<<"$t")" "file://$VV_STATE/backups" "default target"
vv target test local >/dev/null || fail "test of the default target"

mkdir -p "$VV_TMP/nas"
vv target add nas --url "file://$VV_TMP/nas" --price-per-gb-month 0.02 >/dev/null || fail "target add"
assert_eq "$(vv target list --json | jq -r '.[] | select(.name=="nas") | .price_per_gb_month')" 0.02 "price"
grep -q "nas" <<<"$(vv target list)" || fail "target list table"
out=$(vv target test nas) || fail "target test nas"
assert_contains "$out" "Target nas is OK: connect" "target test output"
assert_contains "$out" "MiB/s (8.0 MiB)" "target test names the probe size"
j=$(vv target test nas --json) || fail "target test --json"
assert_eq "$(jq -r '.probe_bytes' <<<"$j")" 8388608 "probe size"
assert_eq "$(jq -r '.write_mib_per_s > 0 and .read_mib_per_s > 0' <<<"$j")" true "throughputs measured"
assert_eq "$(find "$VV_TMP/nas" -mindepth 1 | wc -l)" 0 "target test leaves nothing"

# Secret parameters are stored but never shown or logged.
vv target add sec --url v2://x --param password=hunter2 --param user=bob \
    --param token=t0ps3cret --no-check >/dev/null || fail "target add with secrets"
j=$(vv target list --json) || fail "target list"
assert_eq "$(jq -c '.[] | select(.name=="sec") | .params' <<<"$j")" \
    '["password=***","user=bob","token=***"]' "secret params masked in the list"
out=$(vv target list)
assert_not_contains "$out" hunter2 "secret in the target table"
assert_not_contains "$(api GET /v1/targets/sec)" t0ps3cret "secret in the API"
# The v2 plugin's test fails on purpose, so adding without --no-check
# fails with its message and stores nothing.
expect_failure vv target add sec2 --url v2://x --param password=hunter2
assert_contains "$ERR" "not adding target 'sec2'" "check on add"
assert_contains "$ERR" "timing out on purpose" "check on add says why"
assert_not_contains "$(vv target list)" sec2 "failed add stored nothing"
assert_not_contains "$(cat "$VV_STATE/daemon.log")" hunter2 "secret in the daemon log"
vv target remove sec >/dev/null || fail "target remove sec"

# Errors: duplicate, bad names, unknown scheme, missing directory.
expect_failure vv target add nas --url "file://$VV_TMP/nas"
assert_contains "$ERR" "nas" "duplicate target"
expect_failure vv target add "bad/name" --url "file://$VV_TMP/nas"
expect_failure vv target add s3x --url "nosuchscheme://bucket/x"
assert_contains "$ERR" "nosuchscheme" "unknown scheme"
expect_failure vv target add rel --url "file://relative/path"
expect_failure vv target add gone --url "file://$VV_TMP/does-not-exist"
assert_contains "$ERR" "$VV_TMP/does-not-exist" "add checks the directory"
vv target add gone --url "file://$VV_TMP/does-not-exist" --no-check >/dev/null || fail "adding a target that does not exist yet"
expect_failure vv target test gone
assert_contains "$ERR" "$VV_TMP/does-not-exist" "test of a missing directory names it"
expect_failure vv target test nosuch
assert_contains "$ERR" "nosuch" "test of an unknown target"

vv target remove gone >/dev/null || fail "target remove"
vv target remove nas >/dev/null || fail "target remove nas"
assert_eq "$(vv target list --json | jq -r 'map(.name) | join(",")')" local "targets left"
expect_failure vv target remove nas
exit 0
