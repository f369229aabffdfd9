#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# virtvault target add | list | test | remove, through the CLI and the
# daemon, with the file plugin.
source "${abs_top_srcdir:-$(dirname "$0")/..}/tests/functions.sh"

start_daemon

# The default target lives in the state directory.
t=$(vv target list --json) || fail "target list"
assert_eq "$(jq -r '.[] | select(.name=="local") | .url' <<<"$t")" "file://$VV_STATE/backups" "default target"
vv target test local >/dev/null || fail "test of the default target"

mkdir -p "$VV_TMP/nas"
vv target add nas --url "file://$VV_TMP/nas" --price-per-gb-month 0.02 >/dev/null || fail "target add"
assert_eq "$(vv target list --json | jq -r '.[] | select(.name=="nas") | .price_per_gb_month')" 0.02 "price"
grep -q "nas" <<<"$(vv target list)" || fail "target list table"
vv target test nas >/dev/null || fail "target test nas"
assert_eq "$(find "$VV_TMP/nas" -mindepth 1 | wc -l)" 0 "target test leaves nothing"

# Errors: duplicate, bad names, unknown scheme, missing directory.
expect_failure vv target add nas --url "file://$VV_TMP/nas"
assert_contains "$ERR" "nas" "duplicate target"
expect_failure vv target add "bad/name" --url "file://$VV_TMP/nas"
expect_failure vv target add s3x --url "nosuchscheme://bucket/x"
assert_contains "$ERR" "nosuchscheme" "unknown scheme"
expect_failure vv target add rel --url "file://relative/path"
vv target add gone --url "file://$VV_TMP/does-not-exist" >/dev/null || fail "adding a target that does not exist yet"
expect_failure vv target test gone
assert_contains "$ERR" "$VV_TMP/does-not-exist" "test of a missing directory names it"
expect_failure vv target test nosuch
assert_contains "$ERR" "nosuch" "test of an unknown target"

vv target remove gone >/dev/null || fail "target remove"
vv target remove nas >/dev/null || fail "target remove nas"
assert_eq "$(vv target list --json | jq -r 'map(.name) | join(",")')" local "targets left"
expect_failure vv target remove nas
exit 0
