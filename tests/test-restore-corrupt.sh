#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# A stored image whose bytes changed on the target is refused by every
# restore path, with the sha256 corruption message: a chain converted
# where it is stored (raw and qcow2, the file target's local files), a
# damaged header (the qcow2 check fails first, the message still says
# corrupt), and a full kept as qcow2 (downloaded).  Nothing is left under
# a final name or in staging; the intact chain then restores bit for bit.
# A restore into a directory that fills up half way fails as cleanly,
# saying so, and leaves what was in the directory alone.  verify fails
# naming the sidecar of block digests when it is flipped, missing, or
# disagrees with the image or with itself.
source "${abs_top_srcdir:-$(dirname "$0")/..}/tests/functions.sh"

dom=vvtest-rc-$$
make_domain "$dom" 64
ref=$VV_TMP/ref.raw
truncate -s 64M "$ref"
w () { guest_write "$dom" vda "$1"; ref_write "$ref" "$1"; }
w "write -P 0x11 0 8M"
w "write -P 0x12 40M 1M"

start_daemon
full=$(vv backup "$dom" --full --wait) || fail "full backup: $full"
w "write -P 0x22 1M 2M"
w "write -z 40M 64k"
inc=$(vv backup "$dom" --incremental --wait) || fail "incremental backup: $inc"

img_full=$(find "$VV_STATE" -path "*/$full/vda.qcow2")
img_inc=$(find "$VV_STATE" -path "*/$inc/vda.qcow2")
[ -f "$img_full" ] && [ -f "$img_inc" ] || fail "stored images not found"


# refused ID FORMAT DIR WHAT: the restore fails as corrupt and leaves
# nothing behind in DIR (which may not exist before).
refused () {
    expect_failure vv restore "$1" --to "$3" --format "$2" --force
    assert_contains "$ERR" "is corrupt on target" "$4"
    assert_contains "$ERR" "sha256 is" "$4"
    if [ -d "$3" ]; then
        [ -z "$(ls -A "$3")" ] || fail "$4: left behind in $3: $(ls -A "$3")"
    fi
}

# A data byte in the middle of the full: the base of the chain.
half=$(( $(stat -c %s "$img_full") / 2 ))
flip "$img_full" "$half"
refused "$inc" raw "$VV_TMP/r1" "chain with a corrupt base, raw"
mkdir "$VV_TMP/r2"
refused "$inc" qcow2 "$VV_TMP/r2" "chain with a corrupt base, qcow2"
refused "$full" qcow2 "$VV_TMP/r3" "corrupt full, qcow2"
refused "$full" raw "$VV_TMP/r3" "corrupt full, raw"
expect_failure vv verify "$full"
assert_contains "$ERR" "corrupt" "verify of the corrupt full"
# The verify marked it (and so its chain) corrupt: refused without --force.
assert_eq "$(vv show "$full" --json | jq -r .corrupt)" true "full marked corrupt"
expect_failure vv restore "$inc" --to "$VV_TMP/r0"
assert_contains "$ERR" "backup $inc rests on backup $full, which is marked corrupt" "restore of a point on a corrupt base"
flip "$img_full" "$half"
# Intact again: a verify that passes clears the mark.
vv verify "$full" >/dev/null || fail "verify of the repaired full"
assert_eq "$(vv show "$full" --json | jq -r '[.corrupt, .verify_result] | join(" ")')" "false ok" "mark cleared by a passing verify"

# The top's header: qemu-img or the qcow2 check would stumble first.
flip "$img_inc" 0
refused "$inc" raw "$VV_TMP/r4" "corrupt header of the top"
flip "$img_inc" 0

# A byte near the end of the top.
last=$(( $(stat -c %s "$img_inc") - 100 ))
flip "$img_inc" "$last"
refused "$inc" qcow2 "$VV_TMP/r5" "corrupt top, qcow2"
flip "$img_inc" "$last"

# A directory with room for less than the disk's data (4 MiB of 11).
mkdir -p "$VV_TMP/tiny"
mount -t tmpfs -o size=4m tmpfs "$VV_TMP/tiny" || fail "cannot mount a tmpfs for the full-directory case"
cleanup_fn "umount -l '$VV_TMP/tiny'"
echo "the user's own file" > "$VV_TMP/tiny/keep"
for case in "$inc raw $VV_TMP/tiny/new" "$inc qcow2 $VV_TMP/tiny" "$full qcow2 $VV_TMP/tiny"; do
    set -- $case
    expect_failure vv restore "$1" --to "$3" --format "$2"
    assert_contains "$ERR" "no space left in $3 for the restored disks" "restore of $1 as $2 into a full directory"
    assert_contains "$ERR" "restore to another directory" "what to do when the directory is full"
    assert_eq "$(ls -A "$VV_TMP/tiny")" "keep" "what is left in the full directory ($1, $2)"
    assert_eq "$(cat "$VV_TMP/tiny/keep")" "the user's own file" "the user's file after a failed restore"
    [ "$(df --output=used -k "$VV_TMP/tiny" | tail -1)" -lt 64 ] || fail "space still used after a failed restore ($1, $2)"
done

# The sidecar of block digests (docs/storage-format.md, "Block digests")
# is checked by verify against the catalog and against the image: a
# flipped byte, a missing sidecar, and one that matches the digest the
# catalog holds but not the image each fail naming it.
vv verify "$inc" >/dev/null || fail "verify of the intact incremental"
blk_inc=${img_inc%.qcow2}.blocks
[ -f "$blk_inc" ] || fail "no sidecar $blk_inc"
half=$(( $(stat -c %s "$blk_inc") / 2 ))
flip "$blk_inc" "$half"
expect_failure vv verify "$inc"
assert_contains "$ERR" "the block digests of vda.qcow2 of backup $inc" "verify of a flipped sidecar"
assert_contains "$ERR" "vda.blocks) are corrupt: sha256 is" "verify of a flipped sidecar"
flip "$blk_inc" "$half"
mv "$blk_inc" "$VV_TMP/saved.blocks"
expect_failure vv verify "$inc"
assert_contains "$ERR" "vda.blocks) are missing" "verify without the sidecar"
mv "$VV_TMP/saved.blocks" "$blk_inc"
# rehash_sidecar: the catalog and the manifest take the sidecar's digest
# as it is now (as if it had been written so).
rehash_sidecar () {
    local old new
    old=$(sqlite3 -cmd ".timeout 5000" "$VV_STATE/catalog.db" \
        "SELECT blocks_sha256 FROM backup_disks WHERE backup_id = '$inc'") ||
        fail "reading the catalog"
    new=$(sha256sum < "$blk_inc" | cut -d' ' -f1)
    sqlite3 -cmd ".timeout 5000" "$VV_STATE/catalog.db" \
        "UPDATE backup_disks SET blocks_sha256 = '$new' WHERE backup_id = '$inc'" ||
        fail "updating the catalog"
    sed -i "s/$old/$new/" "${img_inc%vda.qcow2}manifest.json" || fail "updating the manifest"
}
# A digest of the last block changed, and the catalog and manifest told
# so: the image itself disagrees.
cp "$blk_inc" "$VV_TMP/saved.blocks"
flip "$blk_inc" $(( $(stat -c %s "$blk_inc") - 1 ))
rehash_sidecar
nblocks=$(( ($(stat -c %s "$blk_inc") - 40) / 32 ))
expect_failure vv verify "$inc"
assert_contains "$ERR" "do not match the image: block $((nblocks - 1)) " "verify of a sidecar that disagrees with its image"
cp "$VV_TMP/saved.blocks" "$blk_inc"
rehash_sidecar
# A sidecar whose header lies (another block size), hashed into the
# catalog: refused by the parse, naming it.
printf '\000\002\000\000' | dd of="$blk_inc" bs=1 seek=16 count=4 conv=notrunc status=none
rehash_sidecar
expect_failure vv verify "$inc"
assert_contains "$ERR" "vda.blocks) describes" "verify of a sidecar with a lying header"
cp "$VV_TMP/saved.blocks" "$blk_inc"
rehash_sidecar
vv verify "$inc" >/dev/null || fail "verify once the sidecar is intact again"
vv verify "$full" >/dev/null || fail "verify of the intact full"

# Intact again: both formats restore the disk as it was.
vv restore "$inc" --to "$VV_TMP/ok" --format raw >/dev/null || fail "restore raw"
cmp -s "$ref" "$VV_TMP/ok/vda.raw" || fail "restored raw differs"
vv restore "$inc" --to "$VV_TMP/ok" --format qcow2 >/dev/null || fail "restore qcow2"
"$QEMU_IMG" compare -q -f raw -F qcow2 "$ref" "$VV_TMP/ok/vda.qcow2" || fail "restored qcow2 differs"
[ -z "$(find "$VV_TMP/ok" -name '.virtvault-restore-*')" ] || fail "staging left in $VV_TMP/ok"
exit 0
