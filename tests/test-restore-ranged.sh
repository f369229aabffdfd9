#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# A restore from a remote target reads only what the point needs, counted
# at the server: a full of 32 MiB and 5 incrementals that each rewrite
# the same 8 MiB are stored on an SFTP target (OpenSSH's sftp-server
# logs the bytes it reads of each file); restoring the 5th incremental
# reads about the guest's 32 MiB, not the chain's 72 MiB, and gives the
# disk as it was (raw and qcow2).  Every block read is checked: a byte
# changed on the server in a cluster the point needs fails the restore,
# naming the image and the block, and leaves nothing; one changed in a
# cluster the incrementals replaced is never read (verify of the full
# still finds it).
source "${abs_top_srcdir:-$(dirname "$0")/..}/tests/functions.sh"
source "$abs_top_srcdir/tests/sftp-server.sh"

requires_cmd /usr/sbin/sshd ssh-keygen ss /usr/lib/openssh/sftp-server
srv=$VV_TMP/sshd
reads=$VV_TMP/sftp-reads.log
SFTP_READ_LOG=$reads sftp_server_start "$srv" || fail "cannot start sshd"
cleanup_fn "sftp_server_stop '$srv'"
export_dir=$VV_TMP/export
mkdir -p "$export_dir"

dom=vvtest-ranged-$$
make_domain "$dom" 64
ref=$VV_TMP/ref-vda.raw
truncate -s 64M "$ref"
w () { guest_write "$dom" vda "$1"; ref_write "$ref" "$1"; }

start_daemon
vv target add off --url "sftp://root@127.0.0.1:$SFTP_PORT$export_dir" \
    --param "identity=$SFTP_KEY" --param "known_hosts=$SFTP_KNOWN_HOSTS" \
    >/dev/null || fail "target add off"

TARGET=off
ranged_chain
stored=$(find "$export_dir" -type f -name '*.qcow2' -printf '%s\n' | awk '{ s += $1 } END { print s }')

# What the server read of every file since the log was emptied (each
# sftp session logs its closes; the restore's session has ended when the
# restore has).
bytes_read () {
    sed -n 's/.* bytes read \([0-9]*\) written .*/\1/p' "$reads" | awk '{ s += $1 } END { print s + 0 }'
}
reset_reads () { : > "$reads"; }
ranged_restores "$stored" bytes_read reset_reads

# ---- a changed byte in a cluster the point needs ----
full_img=$(find "$export_dir" -path "*/${ids[0]}/vda.qcow2")
[ -n "$full_img" ] || fail "no image of the full on the server"
# host_offset GUEST : where the full's image stores that guest byte.
host_offset () {
    "$QEMU_IMG" map -f qcow2 --output=json "$full_img" |
        jq -e --argjson g "$1" '.[] | select(.data and .start <= $g and $g < .start + .length) | .offset + ($g - .start)'
}
flip_byte () {  # FILE OFFSET
    local b
    b=$(od -An -tu1 -j "$2" -N1 "$1" | tr -d ' ')
    printf "$(printf '\\%03o' $(( b ^ 0x5a )))" | dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}
needed=$(host_offset $((1 << 20))) || fail "no host offset for guest 1 MiB"
flip_byte "$full_img" "$needed"
expect_failure vv restore "$top" --to "$VV_TMP/r-bad" --format raw
assert_contains "$ERR" "vda.qcow2 of backup ${ids[0]}" "the corrupt image is named"
assert_contains "$ERR" "is corrupt on target 'off': block" "the corrupt block is named"
[ ! -e "$VV_TMP/r-bad/vda.raw" ] || fail "a failed restore left its disk"
[ -z "$(find "$VV_TMP" -maxdepth 2 -name '.virtvault-restore-*')" ] || fail "a failed restore left its staging directory"
flip_byte "$full_img" "$needed"

# ---- a changed byte in a cluster the incrementals replaced ----
replaced=$(host_offset $((9 << 20))) || fail "no host offset for guest 9 MiB"
flip_byte "$full_img" "$replaced"
vv restore "$top" --to "$VV_TMP/r-skip" --format raw >/dev/null ||
    fail "restore with a changed byte the point does not need: $(cat "$VV_STATE/daemon.log" | tail -3)"
"$QEMU_IMG" compare -q -f raw -F raw "$VV_TMP/r-skip/vda.raw" "$VV_TMP/ref-$top.raw" ||
    fail "restore of the 5th incremental differs"
expect_failure vv verify "${ids[0]}"
assert_contains "$ERR" "corrupt" "verify of the full finds the changed byte"
flip_byte "$full_img" "$replaced"
vv verify "${ids[0]}" >/dev/null || fail "verify of the full once restored: $ERR"

exit 0
