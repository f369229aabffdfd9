#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Restore as a new domain: defined from the domain XML stored with the
# backup, with the new name, a new UUID, new MAC addresses and its disks
# on the restored images; disks not restored are left out (a cdrom
# stays); it starts and its disks hold the content at backup time; a
# name that exists is refused.
source "${abs_top_srcdir:-$(dirname "$0")/..}/tests/functions.sh"

dom=vvtest-ran-$$
new1=vvtest-ran-new1-$$
new2=vvtest-ran-new2-$$
# A user-mode NIC (works under TCG, needs no network) to see its MAC
# change, a cdrom to see it kept, and vdc, which is not backed up.
EXTRA_DEVICES="<interface type='user'><model type='virtio'/></interface>"
EXTRA_DEVICES="$EXTRA_DEVICES<disk type='file' device='cdrom'><driver name='qemu' type='raw'/><target dev='hdc' bus='ide'/><readonly/></disk>"
make_domain "$dom" 64 32 16
old_uuid=$(virsh domuuid "$dom" | sed -n 1p)
old_mac=$(virsh domiflist "$dom" | awk '/virtio/ {print $5}')
[ -n "$old_mac" ] || fail "no MAC address on the source domain"

ref_a=$VV_TMP/ref-vda.raw ref_b=$VV_TMP/ref-vdb.raw
truncate -s 64M "$ref_a"; truncate -s 32M "$ref_b"
w () { guest_write "$dom" "$1" "$2"; ref_write "$VV_TMP/ref-$1.raw" "$2"; }
w vda "write -P 0x11 0 64k"
w vda "write -P 0x22 7M 2M"
w vdb "write -P 0x33 31M 1M"

start_daemon
id=$(vv backup "$dom" --disks vda,vdb --wait) || fail "backup: $id"
guest_write "$dom" vda "write -P 0x99 0 8M"

cleanup_fn "virsh destroy '$new1'; virsh undefine '$new1'; rm -rf '/var/lib/libvirt/images/$new1'"
cleanup_fn "virsh destroy '$new2'; virsh undefine '$new2'"

# ---- into the default directory, started ----

out=$(vv restore "$id" --as-new "$new1" --start) || fail "restore --as-new: $out"
dir1=/var/lib/libvirt/images/$new1
new_uuid=$(virsh domuuid "$new1" | sed -n 1p) || fail "no domain $new1"
assert_contains "$out" "Defined domain '$new1' (UUID $new_uuid)" "output"
assert_contains "$out" "vdc" "output notes vdc left out"
assert_contains "$out" "started" "output"
[ "$new_uuid" != "$old_uuid" ] || fail "the new domain kept the UUID"
assert_eq "$(virsh domstate "$new1" | sed -n 1p)" running "state with --start"
[[ $(virsh dominfo "$new1") =~ Persistent:\ *yes ]] || fail "$new1 is not persistent"
new_mac=$(virsh domiflist "$new1" | awk '/virtio/ {print $5}')
[ -n "$new_mac" ] && [ "$new_mac" != "$old_mac" ] || fail "MAC address: '$new_mac' (source '$old_mac')"

xml=$(virsh dumpxml --inactive "$new1")
src () { xmllint --xpath "string(//disk[target/@dev='$1']/source/@file)" - <<<"$xml"; }
assert_eq "$(src vda)" "$dir1/vda.qcow2" "vda source"
assert_eq "$(src vdb)" "$dir1/vdb.qcow2" "vdb source"
assert_eq "$(xmllint --xpath "count(//disk[target/@dev='vdc'])" - <<<"$xml")" 0 "vdc left out"
assert_eq "$(xmllint --xpath "string(//disk[target/@dev='hdc']/@device)" - <<<"$xml")" cdrom "cdrom kept"
assert_eq "$(stat -c %a "$dir1")" 711 "mode of the new domain's directory"

# The running copy holds the disks as they were at backup time.
guest_flush "$new1" vda; guest_flush "$new1" vdb
"$QEMU_IMG" compare -q -U -f raw -F qcow2 "$ref_a" "$dir1/vda.qcow2" || fail "vda of $new1 differs"
"$QEMU_IMG" compare -q -U -f raw -F qcow2 "$ref_b" "$dir1/vdb.qcow2" || fail "vdb of $new1 differs"

# ---- names that exist are refused, before any job ----

expect_failure vv restore "$id" --as-new "$new1"
assert_contains "$ERR" "a domain named '$new1' exists already" "name clash"
expect_failure vv restore "$id" --as-new "$dom" --to "$VV_TMP/x"
assert_contains "$ERR" "exists already" "clash with the source domain"
[ ! -e "$VV_TMP/x" ] || fail "a refused restore created its directory"
expect_failure vv restore "$id" --as-new "bad/name"
assert_contains "$ERR" "name" "invalid name"
a=$(api POST "/v1/backups/$id/restore" '{"as_new":"x","in_place":true}')
assert_eq "$(http_status)" 400 "as_new with in_place"
a=$(api POST "/v1/backups/$id/restore" '{"as_new":"x","force_stop":true}')
assert_eq "$(http_status)" 400 "as_new with force_stop"

# ---- one disk, raw, into a given directory, not started ----

out=$(vv restore "$id" --as-new "$new2" --to "$VV_TMP/new2" --disks vda --format raw --json) ||
    fail "restore --as-new --disks vda: $out"
assert_eq "$(jq -r .job.status <<<"$out")" completed "job status"
assert_eq "$(jq -r .restore.domain <<<"$out")" "$new2" "restore.domain"
assert_eq "$(jq -r .restore.domain_uuid <<<"$out")" "$(virsh domuuid "$new2" | sed -n 1p)" "restore.domain_uuid"
assert_eq "$(jq -r .job.domain_uuid <<<"$out")" "$(jq -r .restore.domain_uuid <<<"$out")" "job.domain_uuid"
assert_eq "$(jq -r '.restore.files | join(" ")' <<<"$out")" "$VV_TMP/new2/vda.raw" "restore.files"
assert_contains "$(jq -r .restore.notes <<<"$out")" "vdb, vdc" "notes"
assert_eq "$(virsh domstate "$new2" | sed -n 1p)" "shut off" "state without --start"
xml=$(virsh dumpxml --inactive "$new2")
assert_eq "$(xmllint --xpath "count(//disk[@device='disk'])" - <<<"$xml")" 1 "disks of $new2"
assert_eq "$(xmllint --xpath "string(//disk[target/@dev='vda']/driver/@type)" - <<<"$xml")" raw "vda format"
cmp -s "$ref_a" "$VV_TMP/new2/vda.raw" || fail "raw vda of $new2 differs"
virsh start "$new2" >/dev/null || fail "start $new2"
exit 0
