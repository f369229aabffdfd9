#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# A failed incremental is followed by a correct one: the daemon killed in
# the middle of an incremental, and a target that fills up during one.
# After each failure the chain's base checkpoint is still there, the
# failed attempt's checkpoint and objects are gone, and the next backup is
# an incremental of the same chain that restores bit for bit.
source "${abs_top_srcdir:-$(dirname "$0")/..}/tests/functions.sh"

dom=vvtest-ifail-$$
make_domain "$dom" 1024
ref=$VV_TMP/ref.raw
truncate -s 1024M "$ref"
w () { guest_write "$dom" vda "$1"; ref_write "$ref" "$1"; }

start_daemon

# restores_as_ref ID : the backup restores to exactly the reference image.
restores_as_ref () {
    rm -rf "$VV_TMP/r"
    vv restore "$1" --to "$VV_TMP/r" >/dev/null || fail "restore $1"
    "$QEMU_IMG" compare -q -f raw -F qcow2 "$ref" "$VV_TMP/r/vda.qcow2" ||
        fail "backup $1 does not restore to the disk content at its point"
}

# --- the daemon killed in the middle of an incremental ---
w "write -P 0x11 0 8M"
full=$(vv backup "$dom" --full --wait) || fail "full backup"
chain=$(vv show "$full" --json | jq -r .chain_id)

w "write -P 0x22 100M 600M"
out=$(vv backup "$dom" --incremental --json) || fail "incremental start"
job=$(jq -r .job.id <<<"$out") failed_id=$(jq -r .backup.id <<<"$out")
assert_eq "$(jq -r .backup.type <<<"$out")" incremental "type of the attempt"
kill_daemon_midway "$dom" "$job"
start_daemon
assert_eq "$(vv show "$failed_id" --json | jq -r .status)" failed "the killed incremental"
assert_eq "$(checkpoints_of "$dom")" "virtvault-$full" "checkpoints after the killed incremental"
[ ! -e "$VV_STATE/backups/$(vv show "$full" --json | jq -r .domain_uuid)/$chain/$failed_id" ] ||
    fail "objects of the killed incremental remain"

w "write -P 0x33 900M 1M"
inc=$(vv backup "$dom" --wait) || fail "incremental after the kill"
b=$(vv show "$inc" --json)
assert_eq "$(jq -r .type <<<"$b")" incremental "backup after the kill"
assert_eq "$(jq -r .parent_id <<<"$b")" "$full" "parent after the kill"
assert_eq "$(jq -r .chain_id <<<"$b")" "$chain" "chain after the kill"
restores_as_ref "$inc"

# --- a target that fills up during an incremental (a small domain) ---
dom=vvtest-ifail2-$$
make_domain "$dom" 64
ref=$VV_TMP/ref2.raw
truncate -s 64M "$ref"
w "write -P 0x44 0 8M"
mkdir -p "$VV_TMP/small"
mount -t tmpfs -o size=48m tmpfs "$VV_TMP/small" || fail "cannot mount a tmpfs for the target"
cleanup_fn "umount -l '$VV_TMP/small'"
vv target add small --url "file://$VV_TMP/small" >/dev/null || fail "target add small"
full2=$(vv backup "$dom" --full --target small --wait) ||
    fail "full backup to the small target"
chain2=$(vv show "$full2" --json | jq -r .chain_id)
used=$(df --output=used -k "$VV_TMP/small" | tail -1)

# 40 MiB of new data do not fit beside the full (8 MiB) on 48 MiB.
head -c 40M /dev/urandom > "$VV_TMP/random.bin"
guest_write "$dom" vda "write -s $VV_TMP/random.bin 10M 40M"
qemu-io -f raw "$ref" -c "write -s $VV_TMP/random.bin 10M 40M" >/dev/null
expect_failure vv backup "$dom" --incremental --target small --wait
assert_contains "$ERR" "space" "error of the incremental that filled the target"
assert_eq "$(df --output=used -k "$VV_TMP/small" | tail -1)" "$used" "space used after the failed incremental"
assert_eq "$(checkpoints_of "$dom")" "virtvault-$full2" "checkpoints after the failed incremental"

# The same region zeroed: still dirty, but stored as zero clusters, so
# the next incremental fits and is exact.
w "write -z 10M 40M"
inc2=$(vv backup "$dom" --target small --wait) || fail "incremental after the full target"
b=$(vv show "$inc2" --json)
assert_eq "$(jq -r .type <<<"$b")" incremental "backup after the full target"
assert_eq "$(jq -r .parent_id <<<"$b")" "$full2" "parent after the full target"
assert_eq "$(jq -r .chain_id <<<"$b")" "$chain2" "chain after the full target"
restores_as_ref "$inc2"
vv verify "$inc2" >/dev/null || fail "verify after the full target"
exit 0
