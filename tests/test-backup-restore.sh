#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# A full backup of a running domain with two qcow2 disks, taken while the
# "guest" keeps writing, restores bit for bit to the disk content at the
# moment the backup began; the stored images are valid qcow2; verify,
# show, list and delete work.
source "${abs_top_srcdir:-$(dirname "$0")/..}/tests/functions.sh"

dom=vvtest-br-$$
# A cdrom and a shareable disk, to see them skipped with a note.
"$QEMU_IMG" create -q -f raw "$VV_TMP/shared.raw" 8M
chmod 0644 "$VV_TMP/shared.raw"
EXTRA_DEVICES="<disk type='file' device='cdrom'><driver name='qemu' type='raw'/><target dev='hdc' bus='ide'/><readonly/></disk>"
EXTRA_DEVICES="$EXTRA_DEVICES<disk type='file' device='disk'><driver name='qemu' type='raw' cache='none'/><source file='$VV_TMP/shared.raw'/><target dev='vdd' bus='virtio'/><shareable/></disk>"
make_domain "$dom" 256 64

# Reference images: the same writes applied to raw files tell what each
# disk holds at any point.
ref_a=$VV_TMP/ref-vda.raw ref_b=$VV_TMP/ref-vdb.raw
truncate -s 256M "$ref_a"; truncate -s 64M "$ref_b"
w () { guest_write "$dom" "$1" "$2"; ref_write "$VV_TMP/ref-$1.raw" "$2"; }

# Scattered data, partial clusters, the very last sector, and 64 MiB of
# incompressible data so the backup takes a moment.
w vda "write -P 0x11 0 4k"
w vda "write -P 0x22 1M 3M"
w vda "write -P 0x33 100000512 70000"
w vda "write -P 0x44 268434944 512"
head -c 64M /dev/urandom > "$VV_TMP/random.bin"
qemu-io -f raw "$ref_a" -c "write -s $VV_TMP/random.bin 128M 64M" >/dev/null || fail "ref random write"
guest_write "$dom" vda "write -s $VV_TMP/random.bin 128M 64M"
w vdb "write -P 0x55 0 1M"
w vdb "write -P 0x66 40M 65537"

start_daemon

# Start the backup of both disks and keep writing while it runs.
out=$(vv backup "$dom" --all-disks --json) || fail "backup start: $out"
job=$(jq -r .job.id <<<"$out")
id=$(jq -r .backup.id <<<"$out")
vv_is_id () { [[ $2 =~ ^$1-[0-9a-f]{12}$ ]]; }
vv_is_id job "$job" || fail "job id '$job'"
vv_is_id bk "$id" || fail "backup id '$id'"

# Once libvirt's backup job exists, the point in time is fixed: writes
# from now on must not be in the backup.
seen=
for i in $(seq 1 300); do
    libvirt_backup_running "$dom" && { seen=1; break; }
    st=$(vv job show "$job" --json | jq -r .status)
    [ "$st" = failed ] && fail "backup failed early: $(vv job show "$job" --json | jq -r .error)"
    [ "$st" = completed ] && fail "backup completed before its libvirt job was seen: the writes below would not be made during it"
    sleep 0.05
done
[ -n "$seen" ] || fail "libvirt's backup job of $dom did not appear within 15 s"
guest_write "$dom" vda "write -P 0x77 0 64k"
guest_write "$dom" vda "write -P 0x78 130M 1M"
guest_write "$dom" vdb "write -P 0x79 40M 64k"

j=$(wait_job "$job" completed failed cancelled)
assert_eq "$(jq -r .status <<<"$j")" completed "job status ($(jq -r .error <<<"$j"))"
[ "$(jq -r .bytes_done <<<"$j")" -gt 0 ] || fail "job made no progress"

b=$(vv show "$id" --json) || fail "show $id"
assert_eq "$(jq -r .status <<<"$b")" completed "backup status"
assert_eq "$(jq -r .type <<<"$b")" full "backup type"
assert_eq "$(jq -r .domain <<<"$b")" "$dom" "backup domain"
assert_eq "$(jq -r .domain_uuid <<<"$b")" "$(virsh domuuid "$dom" | sed -n 1p)" "domain uuid"
assert_eq "$(jq -r .parent_id <<<"$b")" null "parent of a full"
assert_eq "$(jq -r .error <<<"$b")" null "error of a completed backup"
assert_eq "$(jq -r '.disks | map(.name) | join(",")' <<<"$b")" "vda,vdb" "disks"
assert_eq "$(jq -r '.disks[0].virtual_size' <<<"$b")" $((256 << 20)) "vda virtual size"
assert_contains "$(jq -r .notes <<<"$b")" hdc "notes on the skipped cdrom"
assert_contains "$(jq -r .notes <<<"$b")" vdd "notes on the skipped shareable disk"
assert_contains "$(jq -r .reason <<<"$b")" full "reason"
for k in chain_id created_at completed_at size_bytes target; do
    [ "$(jq -r ".$k" <<<"$b")" != null ] || fail "backup field $k is null"
done
[[ $(jq -r .created_at <<<"$b") =~ ^20[0-9]{2}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z$ ]] || fail "created_at is not ISO 8601 UTC"

# What is stored: the layout of the storage format contract, valid qcow2
# whose sha256 is the recorded one, and no temporary files.
uuid=$(jq -r .domain_uuid <<<"$b") chain=$(jq -r .chain_id <<<"$b")
dir=$VV_STATE/backups/$uuid/$chain/$id
assert_eq "$(target_files "$VV_STATE/backups" | tr '\n' ' ')" \
    "./$uuid/$chain/$id/domain.xml ./$uuid/$chain/$id/manifest.json ./$uuid/$chain/$id/vda.blocks ./$uuid/$chain/$id/vda.qcow2 ./$uuid/$chain/$id/vdb.blocks ./$uuid/$chain/$id/vdb.qcow2 " \
    "objects on the target"
for d in vda vdb; do
    "$QEMU_IMG" check -q "$dir/$d.qcow2" || fail "qemu-img check $d"
    assert_eq "$(sha256sum < "$dir/$d.qcow2" | cut -d' ' -f1)" \
        "$(jq -r ".disks[] | select(.name==\"$d\") | .sha256" <<<"$b")" "sha256 of $d"
    # The block digests (docs/storage-format.md, "Block digests"): named
    # and hashed in the manifest, 40 + 32 bytes per 256 KiB block.
    md=$(jq -c ".disks[] | select(.name==\"$d\")" "$dir/manifest.json")
    assert_eq "$(jq -r '.blocks | "\(.object) \(.block_size) \(.hash)"' <<<"$md")" \
        "$d.blocks 262144 sha256" "blocks of $d in the manifest"
    assert_eq "$(sha256sum < "$dir/$d.blocks" | cut -d' ' -f1)" \
        "$(jq -r .blocks.sha256 <<<"$md")" "sha256 of $d.blocks"
    stored=$(stat -c %s "$dir/$d.qcow2")
    assert_eq "$(stat -c %s "$dir/$d.blocks")" \
        $((40 + 32 * ((stored + 262143) / 262144))) "size of $d.blocks"
    assert_eq "$(head -c 8 "$dir/$d.blocks")" VVBLOCKS "magic of $d.blocks"
    # Kind 2 (sha256-chain): the state of the image's SHA-256 after each
    # block, and last the image's SHA-256 itself (the unit test
    # test-block-digests checks the states).
    assert_eq "$(od -An -tu1 -j12 -N4 "$dir/$d.blocks" | tr -s ' ')" " 0 0 0 2" "kind of $d.blocks"
    assert_eq "$(tail -c 32 "$dir/$d.blocks" | od -An -tx1 -v | tr -d ' \n')" \
        "$(sha256sum < "$dir/$d.qcow2" | cut -d' ' -f1)" "last digest of $d.blocks"
    # All the qcow2 metadata lies in the first metadata_bytes.
    meta=$(jq -r .metadata_bytes <<<"$md")
    [ "$meta" -gt 0 ] && [ "$meta" -le "$stored" ] && [ $((meta % 65536)) -eq 0 ] ||
        fail "metadata_bytes of $d: $meta"
done
# The portable owner and host.
assert_eq "$(jq -r '"\(.owner_name) \(.host_id)"' "$dir/manifest.json")" \
    "$(id -un) $(cat /etc/machine-id)" "owner_name and host_id"
jq -e ".id == \"$id\" and (.disks | length) == 2" "$dir/manifest.json" >/dev/null ||
    fail "manifest does not describe the backup"
xmllint --noout "$dir/domain.xml" || fail "stored domain XML"
# size_bytes counts every object, the sidecars and the manifest too.
size=$(find "$dir" -type f -printf '%s\n' | awk '{ s += $1 } END { print s }')
assert_eq "$(jq -r .size_bytes <<<"$b")" "$size" "size_bytes"
# Only allocated data was copied: far less than the 320 MiB of disks.
[ "$(stat -c %s "$dir/vda.qcow2")" -lt $((80 << 20)) ] || fail "vda image is not sparse"

# The stored images hold the disks as they were when the backup began.
"$QEMU_IMG" compare -q -f raw -F qcow2 "$ref_a" "$dir/vda.qcow2" || fail "stored vda differs from the disk at backup time"
"$QEMU_IMG" compare -q -f raw -F qcow2 "$ref_b" "$dir/vdb.qcow2" || fail "stored vdb differs from the disk at backup time"
# ... and the writes made during the backup did reach the live disk.
# (compare exits 1 for "differs", 2 for an error: only 1 is the answer.)
guest_flush "$dom" vda
"$QEMU_IMG" compare -q -U -f raw -F qcow2 "$ref_a" "$DISK_vda"; st=$?
case $st in
    1) ;;
    0) fail "the writes made during the backup are missing from the live disk" ;;
    *) fail "qemu-img compare of the live disk with the reference failed (exit $st)" ;;
esac

# The backup left a checkpoint for the next issue's incrementals, and no
# scratch files, sockets or libvirt job behind.
assert_eq "$(checkpoints_of "$dom")" "virtvault-$id" "checkpoints"
assert_eq "$(ls -A "$VV_STATE/run")" "" "run directory"
libvirt_job_idle "$dom" || fail "libvirt job still active"

# list
grep -q "$id" <<<"$(vv list)" || fail "list does not show $id"
assert_eq "$(vv list "$dom" --json | jq -r '.[0].id')" "$id" "list --json"
assert_eq "$(vv list nosuchdomain --json | jq length)" 0 "list of another domain"

# verify
vv verify "$id" >/dev/null || fail "verify"

# restore, both formats, compared with the disk content at backup time.
vv restore "$id" --to "$VV_TMP/restore" >/dev/null || fail "restore qcow2"
vv restore "$id" --to "$VV_TMP/restore-raw" --format raw >/dev/null || fail "restore raw"
for d in vda vdb; do
    "$QEMU_IMG" check -q "$VV_TMP/restore/$d.qcow2" || fail "restored $d.qcow2 check"
    "$QEMU_IMG" compare -q -f raw -F qcow2 "$VV_TMP/ref-$d.raw" "$VV_TMP/restore/$d.qcow2" || fail "restored $d.qcow2 differs"
    cmp -s "$VV_TMP/ref-$d.raw" "$VV_TMP/restore-raw/$d.raw" || fail "restored $d.raw differs"
done
assert_eq "$(ls -A "$VV_TMP/restore" | tr '\n' ' ')" "vda.qcow2 vdb.qcow2 " "restore directory content"
# A second restore into the same directory refuses to overwrite.
expect_failure vv restore "$id" --to "$VV_TMP/restore"
assert_contains "$ERR" "exists" "restore over existing files"

# A second backup with --full is a new full; the older checkpoint is
# released.
id2=$(vv backup "$dom" --full --wait) || fail "second backup"
[ "$id2" != "$id" ] || fail "second backup reused the id"
assert_eq "$(checkpoints_of "$dom")" "virtvault-$id2" "checkpoints after the second backup"
assert_eq "$(vv list "$dom" --json | jq -r '.[0].id')" "$id2" "newest first"
assert_eq "$(vv show "$id2" --json | jq -r '.disks | map(.name) | join(",")')" vda "primary disk only by default"

# delete removes the objects and the record.
vv delete "$id" >/dev/null || fail "delete"
[ ! -e "$dir" ] || fail "objects of a deleted backup remain: $(ls "$dir")"
expect_failure vv show "$id"
assert_contains "$ERR" "$id" "show of a deleted backup"

# The audit log recorded the calls.
grep -q backup <<<"$(sqlite3 "$VV_STATE/catalog.db" "select action from audit")" || fail "no audit rows for backups"
exit 0
