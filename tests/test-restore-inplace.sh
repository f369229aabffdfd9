#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Restore in place: a persistent two-disk domain is backed up, written
# to, and restored over its own disks: refused while it runs (unless
# --force-stop) and without --yes off a terminal; a failure half way
# through the renames puts every old disk back; a completed restore
# keeps each image's path, owner and mode, holds the disk content at
# backup time, and leaves no checkpoint, so the next backup is a full.
source "${abs_top_srcdir:-$(dirname "$0")/..}/tests/functions.sh"

domstate () { virsh domstate "$1" 2>/dev/null | sed -n 1p; }
sums () { sha256sum "$DISK_vda" "$DISK_vdb" | cut -d' ' -f1 | tr '\n' ' '; }
same_as_ref () {  # FILE DEV [-U] : the image holds the disk at backup time
    "$QEMU_IMG" compare -q ${3:-} -f raw -F qcow2 "$VV_TMP/ref-$2.raw" "$1"
}

dom=vvtest-rip-$$
make_persistent_domain "$dom" 256 32 images2
uuid=$(virsh domuuid "$dom" | sed -n 1p)

ref_a=$VV_TMP/ref-vda.raw ref_b=$VV_TMP/ref-vdb.raw
truncate -s 256M "$ref_a"; truncate -s 32M "$ref_b"
w () { guest_write "$dom" "$1" "$2"; ref_write "$VV_TMP/ref-$1.raw" "$2"; }
w vda "write -P 0x11 0 64k"
w vda "write -P 0x22 5M 3M"
w vda "write -P 0x33 268434944 512"
w vdb "write -P 0x44 1M 1M"
w vdb "write -P 0x55 30M 65537"

start_daemon
id=$(vv backup "$dom" --all-disks --wait) || fail "backup: $id"
assert_eq "$(checkpoints_of "$dom")" "virtvault-$id" "checkpoint of the backup"

# More data, in the backup restored from here on (the one held half way).
w vda "write -P 0x99 0 8M"
w vdb "write -P 0x98 0 16M"

# ---- refusals: nothing is touched ----

expect_failure vv restore "$id" --in-place --yes
assert_contains "$ERR" "is running" "in-place restore of a running domain"
assert_contains "$ERR" "--force-stop" "the way out is named"
out=$(vv restore "$id" --in-place </dev/null 2>&1)
assert_eq "$?" 2 "exit status without --yes off a terminal"
assert_contains "$out" "--in-place replaces the disks of '$dom'; add --yes to confirm" "no terminal, no --yes"
expect_failure vv restore "$id" --in-place --yes --to "$VV_TMP/x"
expect_failure vv restore "$id" --in-place --yes --force-stop --disks vdz
assert_contains "$ERR" "no disk 'vdz'" "unknown disk"
api POST "/v1/backups/$id/restore" '{"in_place":true,"to":"/tmp/x"}' >/dev/null
assert_eq "$(http_status)" 400 "in_place and to"
api POST "/v1/backups/$id/restore" '{"to":"/tmp/x","force_stop":true}' >/dev/null
assert_eq "$(http_status)" 400 "force_stop without in_place"
a=$(api POST "/v1/backups/$id/restore" '{"in_place":true,"format":"raw"}')
assert_eq "$(http_status)" 400 "format with in_place"
assert_contains "$a" "keeps the format it has now" "format with in_place"
api POST "/v1/backups/$id/restore" '{"in_place":true,"stop_timeout":601,"force_stop":true}' >/dev/null
assert_eq "$(http_status)" 400 "stop_timeout limit"
assert_eq "$(domstate "$dom")" running "domain state after refusals"

# Refused while a virtvault job holds the domain: QEMU is stopped before
# the backup starts, so the backup hangs in libvirt and certainly still
# runs when the restore is asked for (racing a fast backup to hold it half
# way failed on a loaded machine).
head -c 160M /dev/urandom > "$VV_TMP/random.bin"
guest_write "$dom" vda "write -s $VV_TMP/random.bin 64M 160M"
ref_write "$ref_a" "write -s $VV_TMP/random.bin 64M 160M"
freeze_qemu "$dom"
out=$(vv backup "$dom" --all-disks --json) || fail "backup start: $out"
job=$(jq -r .job.id <<<"$out") id_busy=$(jq -r .backup.id <<<"$out")
expect_failure vv restore "$id" --in-place --yes --force-stop
assert_eq "$(vv job show "$job" --json | jq -r .status)" running "the backup while the restore was refused"
kill -CONT "$QEMU_PID"
assert_contains "$ERR" "busy with job $job" "in-place restore during a backup"
j=$(wait_job "$job" completed failed cancelled)
assert_eq "$(jq -r .status <<<"$j")" completed "the held backup ($(jq -r .error <<<"$j"))"
# That backup is the one restored from now on; later writes are undone.
id=$id_busy
guest_write "$dom" vda "write -P 0x97 64M 1M"
guest_write "$dom" vdb "write -P 0x96 0 32M"

# ---- a failure half way through the renames ----

virsh destroy "$dom" >/dev/null || fail "destroy"
# The restored file takes the old one's owner, group and mode.
chown root:kvm "$DISK_vda"; chmod 0640 "$DISK_vda"
before=$(sums)
ino_a=$(stat -c %i "$DISK_vda")
cps=$(checkpoints_of "$dom")
[ -n "$cps" ] || fail "no checkpoints before the restore"
# vdb's directory is append-only: files can be made in it (the staging
# directory, the link to the old image), but nothing in it can be
# replaced, so vda is renamed over first and vdb's rename fails.
chattr +a "$VV_TMP/images2" || fail "chattr +a"
cleanup_fn "chattr -a '$VV_TMP/images2'"
expect_failure vv restore "$id" --in-place --yes
chattr -a "$VV_TMP/images2"
assert_contains "$ERR" "cannot rename" "failed restore"
assert_contains "$ERR" "put back" "failed restore says the old disks are back"
assert_eq "$(sums)" "$before" "old disks after a failed restore"
assert_eq "$(stat -c %i "$DISK_vda")" "$ino_a" "vda is the very same file"
assert_eq "$(checkpoints_of "$dom")" "$cps" "checkpoints after a failed restore"
# Only what an append-only directory refused to remove is left.
assert_eq "$(ls -A "$VV_TMP/images" | tr '\n' ' ')" "$dom-vda.qcow2 " "vda's directory"
rm -rf "$VV_TMP"/images2/.virtvault-*

# ---- the restore of a shut-off domain ----

out=$(vv restore "$id" --in-place --yes) || fail "in-place restore: $out"
assert_contains "$out" "Restored backup $id over the disks of domain '$dom'" "restore output"
assert_contains "$out" "$DISK_vdb" "restore output names the disks"
assert_eq "$(domstate "$dom")" "shut off" "state after the restore"
[ "$(stat -c %i "$DISK_vda")" != "$ino_a" ] || fail "vda was not replaced"
assert_eq "$(stat -c %U:%G:%a "$DISK_vda")" root:kvm:640 "owner and mode of the new vda"
same_as_ref "$DISK_vda" vda || fail "restored vda differs from the disk at backup time"
same_as_ref "$DISK_vdb" vdb || fail "restored vdb differs from the disk at backup time"
for f in "$DISK_vda" "$DISK_vdb"; do
    "$QEMU_IMG" check -q "$f" || fail "qemu-img check $f"
    assert_eq "$("$QEMU_IMG" info --output=json "$f" | jq -c '.["format-specific"].data.bitmaps // []')" "[]" "bitmaps in $f"
done
assert_eq "$(checkpoints_of "$dom")" "" "checkpoints after the restore"
assert_eq "$(ls -A "$VV_TMP/images" "$VV_TMP/images2" | grep -c virtvault)" 0 "leftovers next to the disks"

# It starts on the restored disks, which still hold the backup's data.
virsh start "$dom" >/dev/null || fail "start after the restore"
guest_flush "$dom" vda; guest_flush "$dom" vdb
same_as_ref "$DISK_vda" vda -U || fail "vda of the restarted domain"
same_as_ref "$DISK_vdb" vdb -U || fail "vdb of the restarted domain"

# The next backup is a full that starts a new chain.
id2=$(vv backup "$dom" --all-disks --wait) || fail "backup after the restore: $id2"
b2=$(vv show "$id2" --json)
assert_eq "$(jq -r .type <<<"$b2")" full "type of the backup after the restore"
[ "$(jq -r .chain_id <<<"$b2")" != "$(vv show "$id" --json | jq -r .chain_id)" ] ||
    fail "the backup after the restore continues the old chain"

# ---- --force-stop on a running domain, then --start ----

guest_write "$dom" vda "write -P 0x96 0 1M"
guest_write "$dom" vdb "write -P 0x95 0 1M"
t0=$(date +%s)
out=$(vv restore "$id" --in-place --yes --force-stop --stop-timeout 2 --start --json) ||
    fail "in-place restore with --force-stop: $out"
t1=$(date +%s)
assert_eq "$(jq -r .job.status <<<"$out")" completed "job status"
assert_eq "$(jq -r .restore.domain_uuid <<<"$out")" "$uuid" "restore.domain_uuid"
assert_eq "$(jq -r '.restore.disks | join(",")' <<<"$out")" vda,vdb "restore.disks"
# No guest OS answers the shutdown request: destroyed after 2 s.
[ $((t1 - t0)) -lt 30 ] || fail "--stop-timeout 2 took $((t1 - t0)) s"
assert_eq "$(domstate "$dom")" running "state after --start"
guest_flush "$dom" vda; guest_flush "$dom" vdb
same_as_ref "$DISK_vda" vda -U || fail "vda after --force-stop"
same_as_ref "$DISK_vdb" vdb -U || fail "vdb after --force-stop"
assert_eq "$(checkpoints_of "$dom")" "" "checkpoints after --force-stop"

# ---- a disk the domain no longer has ----

virsh detach-disk "$dom" vdb --config >/dev/null || fail "detach vdb"
virsh destroy "$dom" >/dev/null
expect_failure vv restore "$id" --in-place --yes
assert_contains "$ERR" "has no disk vdb any more" "restore of a removed disk"
assert_contains "$ERR" "--disks" "the way out is named"
guest_sum=$(sha256sum < "$DISK_vdb")
vv restore "$id" --in-place --yes --disks vda >/dev/null || fail "restore of vda only"
assert_eq "$(sha256sum < "$DISK_vdb")" "$guest_sum" "vdb untouched by --disks vda"
same_as_ref "$DISK_vda" vda || fail "vda restored alone"

# A domain that is gone: the error says what to do instead.
virsh undefine --checkpoints-metadata "$dom" >/dev/null || fail "undefine"
expect_failure vv restore "$id" --in-place --yes
assert_contains "$ERR" "no longer exists" "in-place restore of a deleted domain"
assert_contains "$ERR" "--as-new" "the way out is named"
exit 0
