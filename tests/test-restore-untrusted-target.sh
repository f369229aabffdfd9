#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Objects on a file:// target are untrusted: whoever writes to the
# directory (an NFS export, a shared directory) controls every byte and
# every directory entry.
#
# With the daemon's own catalog: a stored image replaced by a symbolic
# link to a host file or by a FIFO, and a backup directory replaced by a
# link to a directory elsewhere, make restore --to DIR (the daemon runs as
# root) and verify refuse, naming the object; DIR gets nothing, and a
# delete through the linked directory removes nothing outside the target.
#
# With a catalog rebuilt from the target ('target import'): an
# incremental whose qcow2 header names its grandparent as backing file
# (the manifest's sha256 rewritten to match) is refused by restore and
# verify: the backing file must be the one the catalog records.  Verify
# names the block that changed while the sidecar of block digests is the
# old one, and still refuses the backing name once the sidecar is
# rebuilt to match.
source "${abs_top_srcdir:-$(dirname "$0")/..}/tests/functions.sh"

[ "$(id -u)" = 0 ] || fail "this test restores as root, as the daemon runs"

dom=vvtest-rut-$$
make_domain "$dom" 16
uuid=$(virsh domuuid "$dom" | sed -n 1p)
w () { guest_write "$dom" vda "$1"; }

nas=$VV_TMP/nas
mkdir -p "$nas"
start_daemon
vv target add nas --url "file://$nas" >/dev/null || fail "target add nas"
w "write -P 0x11 0 4M"
full=$(vv backup "$dom" --target nas --full --wait) || fail "full backup: $full"
w "write -P 0x22 1M 1M"
inc1=$(vv backup "$dom" --target nas --incremental --wait) || fail "incremental 1: $inc1"
w "write -P 0x33 3M 64k"
inc2=$(vv backup "$dom" --target nas --incremental --wait) || fail "incremental 2: $inc2"
chain=$(vv show "$inc2" --json | jq -r .chain_id) || fail "show $inc2"
bdir=$nas/$uuid/$chain/$inc2
img=$bdir/vda.qcow2
[ -f "$img" ] || fail "stored image $img not found"
mv "$img" "$VV_TMP/vda.qcow2.orig"

# refused WHAT NEEDLE: restore --to DIR and verify of inc2 fail saying
# NEEDLE, and DIR is not made.  The verify marks inc2 corrupt, so the
# next restore needs --force to get to the checks this test is about.
refused () {
    local to=$VV_TMP/restore-$RANDOM
    expect_failure vv restore "$inc2" --to "$to" --format raw --force
    assert_contains "$ERR" "$2" "$1: restore"
    [ ! -e "$to" ] || fail "$1: the restore left $to: $(ls -A "$to")"
    expect_failure vv verify "$inc2"
    assert_contains "$ERR" "$2" "$1: verify"
}

# ---- planted directory entries, the daemon's own catalog ----

ln -s /etc/shadow "$img"
refused "image linked to /etc/shadow" "$uuid/$chain/$inc2/vda.qcow2 is a symbolic link"
rm "$img"

mkfifo "$img"
refused "image replaced by a FIFO" "$uuid/$chain/$inc2/vda.qcow2 in target directory $nas is a FIFO, not an object"
rm "$img"

mv "$VV_TMP/vda.qcow2.orig" "$img"
vv verify "$inc2" >/dev/null || fail "verify of the untouched backup"
mv "$bdir" "$VV_TMP/moved"
ln -s "$VV_TMP/moved" "$bdir"
refused "backup directory linked elsewhere" "$uuid/$chain/$inc2 is a symbolic link"
before=$(cd "$VV_TMP/moved" && ls -A | sort | tr '\n' ' ')
vv delete "$inc2" >/dev/null 2>&1
after=$(cd "$VV_TMP/moved" && ls -A | sort | tr '\n' ' ')
assert_eq "$after" "$before" "files behind the linked backup directory after delete"
rm "$bdir"
mv "$VV_TMP/moved" "$bdir"

# ---- a backing file name rewritten, a catalog rebuilt from the target ----

old="../$inc1/vda.qcow2"
new="../$full/vda.qcow2"
[ ${#old} = ${#new} ] || fail "backup ids of different lengths"
off=$(grep -boa -- "$old" "$img" | head -n1 | cut -d: -f1)
[ -n "$off" ] || fail "backing file name $old not found in $img"
printf '%s' "$new" | dd of="$img" bs=1 seek="$off" conv=notrunc status=none || fail "rewrite backing name"
sha=$(sha256sum "$img" | cut -d' ' -f1)
jq --arg s "$sha" '(.disks[] | select(.name == "vda") | .sha256) = $s' \
   "$bdir/manifest.json" > "$VV_TMP/manifest.json" || fail "jq manifest"
cat "$VV_TMP/manifest.json" > "$bdir/manifest.json"

import_into_new_catalog nas "file://$nas"
assert_contains "$IMPORT_OUT" "Imported 3 backups" "import"
assert_eq "$(vv show "$inc2" --json | jq -r '.disks[0].sha256')" "$sha" "imported sha256 (the manifest's)"
# The sidecar of block digests still describes the image as it was: the
# import takes it as the manifest says, and verify finds the block that
# changed (and marks the backup corrupt, so the restore needs --force);
# restore (which on a file target reads the images in place, not the
# sidecar) still refuses the backing name.
blk_off=$(( off / 262144 ))
expect_failure vv verify "$inc2"
assert_contains "$ERR" "vda.blocks) do not match the image: block $blk_off " "verify of the rewritten image with its old sidecar"
to=$VV_TMP/restore-$RANDOM
expect_failure vv restore "$inc2" --to "$to" --format raw --force
assert_contains "$ERR" "names the backing file '$new'; the catalog says '$old'" "restore of the rewritten image"
[ ! -e "$to" ] || fail "the restore left $to"

# The sidecar rebuilt too (as whoever writes to the target can: kind 1,
# the SHA-256 of each block) and its digest in the manifest and so in the
# imported catalog: the backing file name is still refused.
hex=$(split -b 262144 --filter=sha256sum "$img" | cut -c1-64 | tr -d '\n')
{ head -c 12 "$bdir/vda.blocks"; printf '\x00\x00\x00\x01'; tail -c +17 "$bdir/vda.blocks" | head -c 24
  printf "$(sed 's/../\\x&/g' <<<"$hex")"; } > "$VV_TMP/vda.blocks" ||
    fail "rebuilding the sidecar"
[ "$(stat -c %s "$VV_TMP/vda.blocks")" = "$(stat -c %s "$bdir/vda.blocks")" ] || fail "rebuilt sidecar size"
cat "$VV_TMP/vda.blocks" > "$bdir/vda.blocks"
bsha=$(sha256sum < "$bdir/vda.blocks" | cut -d' ' -f1)
jq --arg s "$bsha" '(.disks[] | select(.name == "vda") | .blocks.sha256) = $s' \
   "$bdir/manifest.json" > "$VV_TMP/manifest.json" || fail "jq manifest"
cat "$VV_TMP/manifest.json" > "$bdir/manifest.json"
sqlite3 -cmd ".timeout 5000" "$VV_STATE/catalog.db" \
    "UPDATE backup_disks SET blocks_sha256 = '$bsha' WHERE backup_id = '$inc2'" || fail "updating the catalog"
refused "backing name of the grandparent" "names the backing file '$new'; the catalog says '$old'"
exit 0
