#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Bad requests get a clear error and change nothing: unknown domain, an
# unknown disk or target, a busy domain, a
# target directory that is not writable, a target that fills up half way.
# After each failure: no backup in the list (or one marked failed with the
# reason), no checkpoint, no scratch files, no partial objects.
source "${abs_top_srcdir:-$(dirname "$0")/..}/tests/functions.sh"

dom=vvtest-err-$$
make_domain "$dom" 128
guest_write "$dom" vda "write -P 0x5a 0 8M"
head -c 40M /dev/urandom > "$VV_TMP/random.bin"
guest_write "$dom" vda "write -s $VV_TMP/random.bin 64M 40M"
start_daemon

nothing_left () {  # what
    assert_eq "$(checkpoints_of "$dom")" "" "$1: checkpoints left behind"
    assert_eq "$(ls -A "$VV_STATE/run")" "" "$1: scratch files or sockets left behind"
    libvirt_job_idle "$dom" || fail "$1: libvirt job left running"
}

# Unknown domain: exit 1, one line naming the domain, nothing recorded.
expect_failure vv backup nosuch-domain-$$ --wait
assert_contains "$ERR" "nosuch-domain-$$" "unknown domain message"
assert_eq "$(echo "$ERR" | wc -l)" 1 "error is one line"
assert_eq "$(vv list --json | jq length)" 0 "backups after an unknown domain"
assert_eq "$(vv job list --json | jq length)" 0 "jobs after an unknown domain"

# Unknown disk, and --disks with a disk that does not exist.
expect_failure vv backup "$dom" --disks vdz
assert_contains "$ERR" "vdz" "unknown disk message"
# Unknown target.
expect_failure vv backup "$dom" --target nosuchtarget
assert_contains "$ERR" "nosuchtarget" "unknown target message"
assert_eq "$(vv list --json | jq length)" 0 "backups after bad requests"
nothing_left "bad requests"

# A domain that is defined but not running is backed up offline, from
# its image (test-offline-backup.sh covers that path in depth); a disk it
# does not have is still refused up front.
off=vvtest-err-off-$$
sed "s/<name>$dom</<name>$off</" "$VV_TMP/$dom.xml" | sed "s|$DISK_vda|$VV_TMP/off.qcow2|" > "$VV_TMP/off.xml"
"$QEMU_IMG" create -q -f qcow2 "$VV_TMP/off.qcow2" 16M
cleanup_fn "virsh undefine '$off'"
virsh define "$VV_TMP/off.xml" >/dev/null || fail "define $off"
expect_failure vv backup "$off" --disks vdz
assert_contains "$ERR" "vdz" "unknown disk of a shut-off domain"
offid=$(vv backup "$off" --wait) || fail "offline backup of a shut-off domain"
assert_contains "$(vv show "$offid" --json | jq -r .notes)" "offline" "notes of an offline backup"
vv delete "$offid" >/dev/null || fail "delete the offline backup"

# A target directory that is not writable (immutable: root cannot write
# there either): the backup fails, says where, and leaves nothing.
mkdir -p "$VV_TMP/ro"
vv target add ro --url "file://$VV_TMP/ro" >/dev/null || fail "target add ro"
chattr +i "$VV_TMP/ro"
expect_failure vv target test ro
assert_contains "$ERR" "$VV_TMP/ro" "target test names the directory"
expect_failure vv backup "$dom" --target ro --wait
assert_contains "$ERR" "$VV_TMP/ro" "backup to a read-only target names the directory"
chattr -i "$VV_TMP/ro"
assert_eq "$(target_files "$VV_TMP/ro")" "" "objects on the read-only target"
b=$(vv list "$dom" --json | jq '.[0]')
assert_eq "$(jq -r .status <<<"$b")" failed "status of the failed backup"
[ "$(jq -r .error <<<"$b")" != null ] || fail "failed backup has no error"
nothing_left "unwritable target"

# A target that fills up half way (a 16 MiB tmpfs for ~48 MiB of data).
mkdir -p "$VV_TMP/small"
mount -t tmpfs -o size=16m tmpfs "$VV_TMP/small" || fail "cannot mount a tmpfs for the disk-full case"
cleanup_fn "umount -l '$VV_TMP/small'"
vv target add small --url "file://$VV_TMP/small" >/dev/null || fail "target add small"
expect_failure vv backup "$dom" --target small --wait
assert_contains "$ERR" "space" "disk full message"
assert_eq "$(target_files "$VV_TMP/small")" "" "objects left on the full target"
[ "$(df --output=used -k "$VV_TMP/small" | tail -1)" -lt 1024 ] || fail "space still used on the full target"
nothing_left "disk full"

# A failure after an image and its sidecar of block digests are stored
# (fault point backup-after-blocks): both go with the attempt.
mkdir -p "$VV_TMP/late"
vv target add late --url "file://$VV_TMP/late" >/dev/null || fail "target add late"
stop_daemon
VV_TEST_FAULT=backup-after-blocks=fail start_daemon --test-clock
expect_failure vv backup "$dom" --target late --wait
assert_contains "$ERR" "after its block digests were stored" "failure after the sidecar"
assert_eq "$(target_files "$VV_TMP/late")" "" "objects left after a failure past the sidecar"
nothing_left "failure after the sidecar"
stop_daemon
start_daemon
vv target remove late >/dev/null || fail "remove target late"

# Busy: a second backup of the same domain while one runs.
# QEMU is stopped first, so the first backup hangs in libvirt and is
# certainly still running when the second is asked for.
freeze_qemu "$dom"
out=$(vv backup "$dom" --json) || fail "backup start"
job=$(jq -r .job.id <<<"$out")
expect_failure vv backup "$dom"
assert_contains "$ERR" "$job" "busy message names the running job"
assert_eq "$(vv job show "$job" --json | jq -r .status)" running "the first job while the second was refused"
kill -CONT "$QEMU_PID"
wait_job "$job" completed >/dev/null

# After all of this a backup succeeds and restores.
id=$(vv backup "$dom" --wait) || fail "backup after the failures"
vv restore "$id" --to "$VV_TMP/restore" >/dev/null || fail "restore"
guest_flush "$dom" vda
"$QEMU_IMG" compare -q -U "$DISK_vda" "$VV_TMP/restore/vda.qcow2" || fail "restored disk differs"

# Removing a target that holds backups is refused; an unused one goes.
expect_failure vv target remove local
vv target remove small >/dev/null || fail "remove an unused target"
exit 0
