#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# A full backup and six incrementals with guest writes between them
# (scattered, sequential, zero writes, overwrites): each incremental reads
# and stores about the changed bytes only, the stored chain passes
# qemu-img check and info --backing-chain, and every point restores bit
# for bit to the disk content at that point.  A raw disk is stored in full
# every time, with a note.  --max-chain starts a new chain and releases
# the old checkpoints; --incremental refuses when no chain can continue.
source "${abs_top_srcdir:-$(dirname "$0")/..}/tests/functions.sh"

dom=vvtest-inc-$$
"$QEMU_IMG" create -q -f raw "$VV_TMP/raw.img" 8M
chmod 0644 "$VV_TMP/raw.img"
EXTRA_DEVICES="<disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='$VV_TMP/raw.img'/><target dev='vdb' bus='virtio'/></disk>"
make_domain "$dom" 256

ref_a=$VV_TMP/ref-vda.raw ref_b=$VV_TMP/ref-vdb.raw
truncate -s 256M "$ref_a"; truncate -s 8M "$ref_b"
w () { guest_write "$dom" "$1" "$2"; ref_write "$VV_TMP/ref-$1.raw" "$2"; }

start_daemon

ids=() dirty=()
# backup EXPECTED_TYPE DIRTY_BYTES [options] : one point; keeps its
# reference images and checks type, position and bytes.
backup () {
    local type=$1 dirty_bytes=$2 b id n=${#ids[@]} j
    shift 2
    b=$(vv backup "$dom" --all-disks --wait --json "$@") || fail "backup $n: $b"
    id=$(jq -r .id <<<"$b")
    assert_eq "$(jq -r .status <<<"$b")" completed "status of backup $n"
    assert_eq "$(jq -r .type <<<"$b")" "$type" "type of backup $n ($(jq -r .reason <<<"$b"))"
    assert_contains "$(jq -r .notes <<<"$b")" "no checkpoint on vdb: raw image, stored in full every time" "note on the raw disk of backup $n"
    cp --sparse=always "$ref_a" "$VV_TMP/ref-vda-$id.raw"
    cp --sparse=always "$ref_b" "$VV_TMP/ref-vdb-$id.raw"
    if [ "$type" = incremental ]; then
        # Bytes read: the changed bytes of vda (whole 64 KiB clusters) plus
        # the raw vdb in full, within 10 %.
        j=$(vv job show "$(jq -r .job_id <<<"$b")" --json)
        local read=$(jq -r .bytes_total <<<"$j") limit=$(( (dirty_bytes + (8 << 20)) * 11 / 10 ))
        [ "$read" -le "$limit" ] || fail "backup $n read $read bytes for $dirty_bytes dirty bytes (limit $limit)"
        local stored=$(jq -r '.disks[] | select(.name=="vda") | .stored_bytes' <<<"$b")
        [ "$stored" -le $(( dirty_bytes * 11 / 10 + (1 << 20) )) ] ||
            fail "backup $n stored $stored bytes of vda for $dirty_bytes dirty bytes"
        assert_eq "$(jq -r '.disks[] | select(.name=="vda") | .backing' <<<"$b")" "../${ids[$n-1]}/vda.qcow2" "backing of vda in backup $n"
        assert_eq "$(jq -r '.disks[] | select(.name=="vdb") | .backing' <<<"$b")" null "backing of the raw vdb in backup $n"
    fi
    ids+=("$id")
    LAST=$b
}

# The full: data here and there.
w vda "write -P 0x11 0 4M"
w vda "write -P 0x12 100M 8M"
w vda "write -P 0x13 268434944 512"
w vdb "write -P 0x14 0 1M"
backup full 0
assert_eq "$(jq -r .chain_pos <<<"$LAST")" 0 "position of the full"
assert_contains "$(jq -r .reason <<<"$LAST")" "full: no earlier completed backup" "reason of the first full"
chain=$(jq -r .chain_id <<<"$LAST")

# 1: scattered small writes, partial clusters.
for off in 1M 20M 33M 47000000 150M 200M 250M; do w vda "write -P 0x21 $off 4k"; done
w vdb "write -P 0x22 4M 4k"
backup incremental $((7 * 65536 * 2))
assert_eq "$(jq -r .chain_pos <<<"$LAST")" 1 "position of incremental 1"
assert_eq "$(jq -r .chain_id <<<"$LAST")" "$chain" "chain of incremental 1"
assert_eq "$(jq -r .parent_id <<<"$LAST")" "${ids[0]}" "parent of incremental 1"
assert_contains "$(jq -r .reason <<<"$LAST")" "incremental: 1st since full ${ids[0]} (max chain 6)" "reason of incremental 1"

# 2: a long sequential write of random data.
head -c 16M /dev/urandom > "$VV_TMP/random.bin"
qemu-io -f raw "$ref_a" -c "write -s $VV_TMP/random.bin 60M 16M" >/dev/null || fail "ref random write"
guest_write "$dom" vda "write -s $VV_TMP/random.bin 60M 16M"
backup incremental $((16 << 20))
assert_contains "$(jq -r .reason <<<"$LAST")" "incremental: 2nd since full" "reason of incremental 2"

# 3: zero writes over data (must read back as zeros, not as the parent's
# data) and over unallocated space, plus a partial-cluster zero write.
w vda "write -z 100M 4M"
w vda "write -z 180M 2M"
w vda "write -z 62M 4k"
backup incremental $((6 << 20))
z=$(jq -r '.disks[] | select(.name=="vda") | .stored_bytes' <<<"$LAST")
[ "$z" -lt $((1 << 20)) ] || fail "zero writes were stored as data ($z bytes)"

# 4: overwrite the same area twice, and a write across a cluster border.
w vda "write -P 0x41 60M 1M"
w vda "write -P 0x42 60M 512k"
w vda "write -P 0x43 131070k 4k"
backup incremental $(( (1 << 20) + 2 * 65536 ))

# 5: no change at all in vda.
backup incremental 0
[ "$(jq -r '.disks[] | select(.name=="vda") | .stored_bytes' <<<"$LAST")" -lt $((1 << 20)) ] ||
    fail "an unchanged disk stored data"

# 6: data into a hole and the last sector again.
w vda "write -P 0x61 230M 3M"
w vda "write -P 0x62 268434944 512"
backup incremental $(( (3 << 20) + 65536 ))
assert_eq "$(jq -r .chain_pos <<<"$LAST")" 6 "position of incremental 6"
assert_eq "$(checkpoints_of "$dom")" "virtvault-${ids[6]}" "only the newest checkpoint is kept"

# The stored chain is valid qcow2 to qemu-img.
uuid=$(jq -r .domain_uuid <<<"$LAST")
top=$VV_STATE/backups/$uuid/$chain/${ids[6]}/vda.qcow2
for id in "${ids[@]}"; do
    "$QEMU_IMG" check -q "$VV_STATE/backups/$uuid/$chain/$id/vda.qcow2" || fail "qemu-img check $id"
done
info=$("$QEMU_IMG" info --output=json --backing-chain "$top") || fail "qemu-img info --backing-chain"
assert_eq "$(jq length <<<"$info")" 7 "images in the backing chain of the top"
assert_eq "$(jq -r '.[0]["backing-filename"]' <<<"$info")" "../${ids[5]}/vda.qcow2" "backing file name of the top"
assert_eq "$(jq -r '.[0]["backing-filename-format"]' <<<"$info")" qcow2 "backing format of the top"
assert_eq "$(jq -r '.[6]["backing-filename"]' <<<"$info")" null "the full is standalone"
"$QEMU_IMG" compare -q -f raw -F qcow2 "$VV_TMP/ref-vda-${ids[6]}.raw" "$top" || fail "the stored chain differs from the disk"

# Every point restores bit for bit.
for id in "${ids[@]}"; do
    vv restore "$id" --to "$VV_TMP/r-$id" --format raw >/dev/null || fail "restore $id"
    cmp -s "$VV_TMP/ref-vda-$id.raw" "$VV_TMP/r-$id/vda.raw" || fail "restored vda of $id differs"
    cmp -s "$VV_TMP/ref-vdb-$id.raw" "$VV_TMP/r-$id/vdb.raw" || fail "restored vdb of $id differs"
    rm -rf "$VV_TMP/r-$id"
done
vv verify "${ids[6]}" >/dev/null || fail "verify the top"

# list shows chain and position; chain list / show.
out=$(vv list "$dom")
assert_contains "$out" "CHAIN" "list header"
grep -q "${ids[3]} .*$chain  *3 " <<<"$out" || fail "list does not show chain and position 3: $out"
assert_eq "$(vv chain list "$dom" --json | jq -r '.[0].id')" "$chain" "chain list"
cs=$(vv chain show "$chain" --json) || fail "chain show"
assert_eq "$(jq -r .length <<<"$cs")" 6 "chain length"
assert_eq "$(jq -r .full_id <<<"$cs")" "${ids[0]}" "full of the chain"
assert_eq "$(jq -r '.backups | map(.chain_pos) | join(",")' <<<"$cs")" "0,1,2,3,4,5,6" "backups in chain order"
grep -q "Length" <<<"$(vv chain show "$chain")" || fail "chain show text"

# A deleted parent is refused while incrementals depend on it.
expect_failure vv delete "${ids[3]}"
assert_contains "$ERR" "based on it" "deleting a parent"

# The chain is at max chain 6: the next backup is a new full.
w vda "write -P 0x71 10M 1M"
backup full 0
assert_contains "$(jq -r .reason <<<"$LAST")" "full: chain $chain reached max chain 6" "reason at max chain"
chain2=$(jq -r .chain_id <<<"$LAST")
[ "$chain2" != "$chain" ] || fail "a new full continued the old chain"
assert_eq "$(checkpoints_of "$dom")" "virtvault-${ids[7]}" "old chain's checkpoints are released"

# --max-chain 1: one incremental, then --incremental is refused, and a
# plain backup is a full again.
w vda "write -P 0x72 11M 64k"
backup incremental 65536 --incremental --max-chain 1
expect_failure vv backup "$dom" --all-disks --incremental --max-chain 1 --wait
assert_contains "$ERR" "reached max chain 1" "--incremental at max chain"
w vda "write -P 0x73 12M 64k"
backup full 0 --max-chain 1
# --full is always a full.
backup full 0 --full
assert_eq "$(jq -r .reason <<<"$LAST")" "full: requested" "reason of --full"
vv restore "${ids[8]}" --to "$VV_TMP/r8" --format raw >/dev/null || fail "restore ${ids[8]}"
cmp -s "$VV_TMP/ref-vda-${ids[8]}.raw" "$VV_TMP/r8/vda.raw" || fail "restored vda of ${ids[8]} differs"
exit 0
