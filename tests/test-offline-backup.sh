#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# A shut-off domain is backed up from its images (qemu-nbd, read-only):
# live full -> writes -> stop -> offline incremental from the image's
# persistent bitmap (about the dirty bytes read) -> start -> writes ->
# live incremental based on the same checkpoint -> stop -> offline full
# (--full); every point restores bit for bit.  An image without the
# chain's bitmap gives a full with the reason.  While the offline backup
# reads, the domain can not start (qemu-nbd holds QEMU's image lock); a
# cancelled offline backup and one whose daemon was killed leave no
# qemu-nbd, run directory or objects behind.
source "${abs_top_srcdir:-$(dirname "$0")/..}/tests/functions.sh"

dom=vvtest-off-$$
make_persistent_domain "$dom" 128 16
cleanup_fn "pkill -KILL -f 'qemu-nbd.*$VV_TMP/'"

# The daemon's qemu-nbd, through a wrapper that, while $VV_TMP/hold
# exists, stops the server of vda (SIGSTOP) as soon as it is ready, so an
# offline backup is held before it reads anything; the pid goes to
# $VV_TMP/held.
cat > "$VV_TMP/qemu-nbd" <<EOF
#!/bin/bash
qemu-nbd "\$@" || exit
[ -e "$VV_TMP/hold" ] || exit 0
pidfile= vda=
for a in "\$@"; do
    case \$a in --pid-file=*) pidfile=\${a#--pid-file=} ;; vda) vda=1 ;; esac
done
[ -n "\$vda" ] || exit 0
kill -STOP \$(cat "\$pidfile") && cat "\$pidfile" > "$VV_TMP/held"
EOF
chmod +x "$VV_TMP/qemu-nbd"
export QEMU_NBD=$VV_TMP/qemu-nbd

truncate -s 128M "$VV_TMP/ref-vda.raw"; truncate -s 16M "$VV_TMP/ref-vdb.raw"
w () { guest_write "$dom" "$1" "$2"; ref_write "$VV_TMP/ref-$1.raw" "$2"; }
stop_dom () {
    virsh destroy "$dom" >/dev/null || fail "virsh destroy"
    assert_eq "$(virsh domstate "$dom" | sed -n 1p)" "shut off" "state after destroy"
}
servers () { pgrep -f "qemu-nbd.*$VV_STATE/run/" || true; }

start_daemon

# backup TYPE [options] : one point, its restore compared with the
# references; sets ID, B (its JSON) and READ (bytes the job read).
backup () {
    local type=$1; shift
    B=$(vv backup "$dom" --all-disks --wait --json "$@") || fail "backup: $B"
    ID=$(jq -r .id <<<"$B")
    assert_eq "$(jq -r .status <<<"$B")" completed "status of $ID"
    assert_eq "$(jq -r .type <<<"$B")" "$type" "type of $ID ($(jq -r .reason <<<"$B"))"
    READ=$(vv job show "$(jq -r .job_id <<<"$B")" --json | jq -r .bytes_total)
    vv restore "$ID" --to "$VV_TMP/r" --format raw >/dev/null || fail "restore $ID"
    cmp -s "$VV_TMP/ref-vda.raw" "$VV_TMP/r/vda.raw" || fail "restored vda of $ID differs"
    cmp -s "$VV_TMP/ref-vdb.raw" "$VV_TMP/r/vdb.raw" || fail "restored vdb of $ID differs"
    rm -rf "$VV_TMP/r"
    assert_eq "$(servers)" "" "qemu-nbd left after $ID"
    # Online or offline, every image has its sidecar of block digests,
    # and verify checks each block against it.
    for d in vda vdb; do
        [ "$(jq -r ".disks[] | select(.name == \"$d\") | .block_size" <<<"$B")" = 262144 ] ||
            fail "$d of $ID has no block digests"
    done
    vv verify "$ID" >/dev/null || fail "verify $ID"
}

# 0: live full.
w vda "write -P 0x11 0 8M"
w vdb "write -P 0x12 1M 1M"
backup full
id0=$ID

# 1: writes, a clean stop (SIGTERM: bitmaps saved), offline incremental.
w vda "write -P 0x21 20M 3M"
w vda "write -z 2M 1M"
w vdb "write -P 0x22 8M 64k"
stop_dom
bm=$("$QEMU_IMG" info -U --output=json "$DISK_vda" | jq -c '.["format-specific"].data.bitmaps')
assert_contains "$bm" "virtvault-$id0" "bitmap in the shut-off image"
backup incremental
id1=$ID
assert_eq "$(jq -r .parent_id <<<"$B")" "$id0" "parent of the offline incremental"
assert_contains "$(jq -r .reason <<<"$B")" "incremental (offline): 1st since full $id0" "reason of $id1"
assert_contains "$(jq -r .reason <<<"$B")" "changes since checkpoint virtvault-$id0 of $id0, read from the shut-off image" "reason of $id1"
assert_contains "$(jq -r .notes <<<"$B")" "offline backup (domain shut off)" "notes of $id1"
assert_eq "$(jq -r .checkpoint <<<"$B")" null "an offline point makes no checkpoint"
assert_eq "$(jq -r .offline <<<"$B")" true "offline flag of $id1"
[ "$READ" -le $(( (3 << 20) + (64 << 10) + (128 << 10) )) ] || fail "offline incremental read $READ bytes for 3 MiB + 64 KiB dirty"
[ "$READ" -ge $(( 3 << 20 )) ] || fail "offline incremental read only $READ bytes"
assert_eq "$(checkpoints_of "$dom")" "virtvault-$id0" "checkpoints after the offline point"

# 2: start, more writes, live incremental from the same checkpoint.
virsh start "$dom" >/dev/null || fail "virsh start"
w vda "write -P 0x31 40M 2M"
w vdb "write -P 0x32 0 64k"
backup incremental
id2=$ID
assert_eq "$(jq -r .parent_id <<<"$B")" "$id1" "parent of the live incremental"
assert_contains "$(jq -r .reason <<<"$B")" "incremental: 2nd since full $id0" "reason of $id2"
assert_contains "$(jq -r .reason <<<"$B")" "changes since checkpoint virtvault-$id0 of $id0 (the points since were taken offline)" "reason of $id2"
assert_eq "$(checkpoints_of "$dom")" "virtvault-$id2" "checkpoints after the live incremental"
assert_eq "$(jq -r .offline <<<"$B")" false "offline flag of $id2"

# 3: stop, offline full on request.
stop_dom
backup full --full
id3=$ID
assert_eq "$(jq -r .reason <<<"$B")" "full: requested" "reason of $id3"
assert_contains "$(jq -r .notes <<<"$B")" "offline backup (domain shut off)" "notes of $id3"

# 4: a live point, then its bitmap removed from the shut-off images: full.
virsh start "$dom" >/dev/null || fail "virsh start"
w vda "write -P 0x41 50M 1M"
backup full
id4=$ID
assert_contains "$(jq -r .reason <<<"$B")" "has no checkpoint" "live after an offline full"
stop_dom
"$QEMU_IMG" bitmap --remove "$DISK_vda" "virtvault-$id4" || fail "bitmap --remove"
"$QEMU_IMG" bitmap --remove "$DISK_vdb" "virtvault-$id4" || fail "bitmap --remove"
backup full
assert_contains "$(jq -r .reason <<<"$B")" "full: no selected disk image of the shut-off domain carries a usable bitmap of checkpoint virtvault-$id4" "reason without bitmaps"
assert_contains "$(jq -r .reason <<<"$B")" "vda: the image carries no bitmap" "reason without bitmaps"

# 5: hold an offline backup while it reads (its qemu-nbd stopped): the
# domain can not start meanwhile; a cancel leaves nothing behind.
# hold_servers : waits until the wrapper has stopped the server of vda;
# sets HELD.
hold_servers () {
    local i
    for i in $(seq 1 1000); do
        [ -s "$VV_TMP/held" ] && break
        sleep 0.01
    done
    HELD=$(cat "$VV_TMP/held" 2>/dev/null) || fail "the offline backup started no qemu-nbd"
    rm -f "$VV_TMP/held"
    cleanup_fn "kill -CONT $HELD"
}
touch "$VV_TMP/hold"
out=$(vv backup "$dom" --all-disks --full --json) || fail "backup start"
job=$(jq -r .job.id <<<"$out") id=$(jq -r .backup.id <<<"$out")
hold_servers
expect_failure virsh start "$dom"
assert_contains "$ERR" "lock" "starting the domain while an offline backup reads it"
vv job cancel "$job" >/dev/null || { kill -CONT $HELD; fail "job cancel"; }
kill -CONT $HELD
j=$(wait_job "$job" cancelled failed completed)
assert_eq "$(jq -r .status <<<"$j")" cancelled "job status after cancel"
assert_eq "$(servers)" "" "qemu-nbd after cancel"
assert_eq "$(ls -A "$VV_STATE/run")" "" "run directories after cancel"
[ -z "$(find "$VV_STATE/backups" -path "*/$id/*" -type f)" ] || fail "objects of the cancelled backup"

# 6: the daemon killed while an offline backup reads: after a restart the
# orphaned qemu-nbd is gone and the backup failed.
out=$(vv backup "$dom" --all-disks --full --json) || fail "backup start"
job=$(jq -r .job.id <<<"$out") id=$(jq -r .backup.id <<<"$out")
hold_servers
kill -9 "$VV_PID"
wait "$VV_PID" 2>/dev/null
kill -CONT $HELD
[ -n "$(servers)" ] || fail "expected the orphaned qemu-nbd"
start_daemon
assert_eq "$(vv show "$id" --json | jq -r .status)" failed "backup status after the crash"
assert_eq "$(servers)" "" "qemu-nbd after recovery"
assert_eq "$(ls -A "$VV_STATE/run")" "" "run directories after recovery"
[ -z "$(find "$VV_STATE/backups" -path "*/$id/*" -type f)" ] || fail "objects of the interrupted backup"

# The domain starts again once nothing reads its images.
virsh start "$dom" >/dev/null || fail "virsh start after the offline backups"
exit 0
