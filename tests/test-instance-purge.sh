#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Backups outlive their domain, and 'instance purge' deletes exactly the
# backups of one instance: a name reused by a new domain (a new UUID) is
# refused as ambiguous, and purging by UUID leaves the other instance's
# backups alone.
source "${abs_top_srcdir:-$(dirname "$0")/..}/tests/functions.sh"

dom=vvtest-purge-$$
make_domain "$dom" 16
guest_write "$dom" vda "write -P 0x61 0 1M"
start_daemon
old_uuid=$(virsh domuuid "$dom" | sed -n 1p)
old_id=$(vv backup "$dom" --wait) || fail "backup of the first domain"

# The domain goes away (transient: destroy undefines it); its backup stays.
virsh destroy "$dom" >/dev/null || fail "destroy"
assert_eq "$(vv show "$old_id" --json | jq -r .status)" completed "backup of a domain that is gone"

# A new domain under the same name.
make_domain "$dom" 16
guest_write "$dom" vda "write -P 0x62 0 1M"
new_uuid=$(virsh domuuid "$dom" | sed -n 1p)
[ "$new_uuid" != "$old_uuid" ] || fail "the new domain has the old UUID"
new_id=$(vv backup "$dom" --wait) || fail "backup of the second domain"

expect_failure vv instance purge "$dom" --yes
assert_contains "$ERR" "more than one instance" "purge of an ambiguous name"
assert_eq "$(vv list --json | jq length)" 2 "backups after the refused purge"

vv instance purge "$old_uuid" --yes >/dev/null || fail "purge by UUID"
assert_eq "$(vv list --json | jq -r 'map(.id) | join(",")')" "$new_id" "backups after purging the old instance"
[ -z "$(find "$VV_STATE/backups/$old_uuid" -type f 2>/dev/null)" ] || fail "objects of the purged instance remain"
vv restore "$new_id" --to "$VV_TMP/r" >/dev/null || fail "restore of the other instance's backup"
exit 0
