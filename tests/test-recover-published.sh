#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# A power cut that lost the catalog's "completed" commit leaves a complete
# backup marked running.  Simulated by editing the catalog while the
# daemon is stopped.  After a restart the backup must be recognised from
# its manifest and objects on the target and recorded completed (not
# deleted): it restores bit-identical, its checkpoint remains, and the
# next backup is an exact incremental on top of it.  A backup whose
# objects do not match its manifest (an image changed, a sidecar of block
# digests gone) is not taken: it fails and is cleaned up as before.
source "${abs_top_srcdir:-$(dirname "$0")/..}/tests/functions.sh"
requires_cmd sqlite3

dom=vvtest-recpub-$$
make_domain "$dom" 64
guest_write "$dom" vda "write -P 0x11 0 16M"
start_daemon

id1=$(vv backup "$dom" --wait) || fail "full backup"
guest_flush "$dom" vda
cp "$DISK_vda" "$VV_TMP/ref1.qcow2"
cp1=$(jq -r .checkpoint <<<"$(vv show "$id1" --json)")
assert_eq "$cp1" "virtvault-$id1" "checkpoint of the full"

# The power cut: the commit that made it completed is lost.
stop_daemon
sqlite3 "$VV_STATE/catalog.db" \
    "UPDATE backups SET status = 'running', completed_at = NULL WHERE id = '$id1';
     UPDATE jobs SET status = 'running', finished_at = NULL
       WHERE id = (SELECT job_id FROM backups WHERE id = '$id1')" ||
    fail "sqlite3 update"
assert_eq "$(sqlite3 "$VV_STATE/catalog.db" "SELECT status FROM backups WHERE id = '$id1'")" \
    running "status set back"
start_daemon

b=$(vv show "$id1" --json) || fail "show after restart"
assert_eq "$(jq -r .status <<<"$b")" completed "status of the backup found complete"
assert_eq "$(jq -r .checkpoint <<<"$b")" "$cp1" "checkpoint in the catalog kept"
assert_eq "$(jq -r .status <<<"$(vv job show "$(jq -r .job_id <<<"$b")" --json)")" completed \
    "status of its job"
assert_contains "$(checkpoints_of "$dom")" "$cp1" "checkpoint kept in libvirt"
grep -q "backup $id1 of '$dom' was complete on its target" "$VV_STATE/daemon.log" ||
    fail "the daemon log does not say the backup was found complete"
vv restore "$id1" --to "$VV_TMP/r1" >/dev/null || fail "restore of the recovered backup"
"$QEMU_IMG" compare -q "$VV_TMP/ref1.qcow2" "$VV_TMP/r1/vda.qcow2" ||
    fail "restored disk differs from the disk at backup time"

# The next backup is an incremental with exactly the new write.
guest_write "$dom" vda "write -P 0x22 32M 2M"
id2=$(vv backup "$dom" --wait) || fail "backup after recovery"
b2=$(vv show "$id2" --json)
assert_eq "$(jq -r .type <<<"$b2")" incremental "type of the next backup"
assert_eq "$(jq -r .parent_id <<<"$b2")" "$id1" "parent of the next backup"
obj=$(find "$VV_STATE/backups" -path "*/$id2/vda.qcow2")
[ -n "$obj" ] || fail "no image of $id2"
data=$("$QEMU_IMG" map --output=json "$obj" | jq '[.[] | select(.data and .depth == 0) | .length] | add')
assert_eq "$data" $((2 * 1024 * 1024)) "bytes in the incremental's own image"
guest_flush "$dom" vda
vv restore "$id2" --to "$VV_TMP/r2" >/dev/null || fail "restore of the incremental"
"$QEMU_IMG" compare -q -U "$DISK_vda" "$VV_TMP/r2/vda.qcow2" || fail "restored incremental differs"

# Not taken when an object does not match its manifest: one byte of the
# image changed (same size, other sha256).
stop_daemon
sqlite3 "$VV_STATE/catalog.db" \
    "UPDATE backups SET status = 'running', completed_at = NULL WHERE id = '$id2'" ||
    fail "sqlite3 update"
printf '\x99' | dd of="$obj" bs=1 seek=$((1024 * 1024 * 3 / 2)) conv=notrunc status=none
start_daemon
b2=$(vv show "$id2" --json)
assert_eq "$(jq -r .status <<<"$b2")" failed "status of a backup whose object changed"
grep -q "backup $id2 of '$dom': a manifest was found but not taken: object .* does not have the sha256" \
    "$VV_STATE/daemon.log" || fail "the log does not say why the manifest was not taken"
[ -z "$(find "$VV_STATE/backups" -path "*/$id2/*" -type f)" ] || fail "objects of the failed backup left"
case "$(checkpoints_of "$dom")" in *"virtvault-$id2"*) fail "checkpoint of the failed backup left" ;; esac
assert_eq "$(jq -r .status <<<"$(vv show "$id1" --json)")" completed "the full is untouched"

# Nor when the sidecar of block digests its manifest names is gone.
guest_write "$dom" vda "write -P 0x2b 36M 1M"
ids=$(vv backup "$dom" --wait) || fail "backup before removing its sidecar"
stop_daemon
sqlite3 "$VV_STATE/catalog.db" \
    "UPDATE backups SET status = 'running', completed_at = NULL WHERE id = '$ids'" ||
    fail "sqlite3 update"
blk=$(find "$VV_STATE/backups" -path "*/$ids/vda.blocks")
[ -n "$blk" ] || fail "no sidecar of $ids"
rm "$blk"
start_daemon
assert_eq "$(jq -r .status <<<"$(vv show "$ids" --json)")" failed "status of a backup whose sidecar is gone"
grep -q "backup $ids of '$dom': a manifest was found but not taken: object .*/$ids/vda.blocks is missing" \
    "$VV_STATE/daemon.log" || fail "the log does not say the sidecar is missing"
[ -z "$(find "$VV_STATE/backups" -path "*/$ids/*" -type f)" ] || fail "objects of the failed backup left"

# The daemon dies right after publishing a manifest (fault point, test
# daemons only): the backup is recorded completed at the restart, and, as
# when a backup completes normally, only its checkpoint stays in libvirt
# (the previous point's is pruned).
guest_write "$dom" vda "write -P 0x33 40M 1M"
id3=$(vv backup "$dom" --wait) || fail "backup before the crash"
assert_eq "$(checkpoints_of "$dom")" "virtvault-$id3" "checkpoints in libvirt before the crash"
stop_daemon
guest_write "$dom" vda "write -P 0x44 44M 1M"
export VV_TEST_FAULT=backup-after-manifest=crash
start_daemon --test-clock
out=$(vv backup "$dom" --json) || fail "backup start: $out"
id4=$(jq -r .backup.id <<<"$out")
daemon_gone () { ! kill -0 "$VV_PID" 2>/dev/null; }
wait_for 120 "virtvaultd dying at backup-after-manifest" daemon_gone
unset VV_TEST_FAULT
assert_eq "$(checkpoints_of "$dom" | sort | tr '\n' ' ')" \
    "$(printf '%s\n' "virtvault-$id3" "virtvault-$id4" | sort | tr '\n' ' ')" \
    "checkpoints in libvirt when the daemon died"
start_daemon
assert_eq "$(jq -r .status <<<"$(vv show "$id4" --json)")" completed "status of the backup published before the crash"
assert_eq "$(checkpoints_of "$dom")" "virtvault-$id4" "checkpoints in libvirt after recovering $id4"
guest_flush "$dom" vda
vv restore "$id4" --to "$VV_TMP/r4" >/dev/null || fail "restore of the recovered backup"
"$QEMU_IMG" compare -q -U "$DISK_vda" "$VV_TMP/r4/vda.qcow2" || fail "restored disk of $id4 differs"
exit 0
