#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The sftp target against a real OpenSSH sshd on loopback
# (tests/sftp-server.sh): target add refuses an unknown host key (naming
# its SHA256 fingerprint and the known_hosts file), a key the server does
# not authorize and an identity file that is not root-only; target test;
# a full and two incrementals of a real domain restore bit for bit to a
# directory and as a new domain; the server killed in the middle of an
# upload fails the backup cleanly (nothing published) and the next one
# succeeds once it is back; a full server file system fails with "no
# space" and leaves nothing; a fresh daemon imports the chain from the
# target.
source "${abs_top_srcdir:-$(dirname "$0")/..}/tests/functions.sh"
source "$abs_top_srcdir/tests/sftp-server.sh"

requires_cmd /usr/sbin/sshd ssh-keygen ss
srv=$VV_TMP/sshd
sftp_server_start "$srv" || fail "cannot start sshd"
cleanup_fn "sftp_server_stop '$srv'"
export_dir=$VV_TMP/export
mkdir -p "$export_dir"
url="sftp://root@127.0.0.1:$SFTP_PORT$export_dir"
params=(--param "identity=$SFTP_KEY" --param "known_hosts=$SFTP_KNOWN_HOSTS")

dom=vvtest-sftp-$$
make_domain "$dom" 64
ref=$VV_TMP/ref-vda.raw
truncate -s 64M "$ref"
w () { guest_write "$dom" vda "$1"; ref_write "$ref" "$1"; }

start_daemon

# ---- bad host key, bad key, bad identity file: refused, nothing added ----
# refused ARGS... : target add with ARGS fails, or (the daemon does not
# connect when adding yet) target test of it does; the message is in $ERR.
refused () {
    if vv target add bad "$@" >/dev/null 2>&1; then
        expect_failure vv target test bad
        vv target remove bad >/dev/null || fail "target remove bad"
    else
        expect_failure vv target add bad "$@"
    fi
}
fp=$(ssh-keygen -l -E sha256 -f "$srv/host_key.pub" | cut -d' ' -f2)
: > "$VV_TMP/empty_known_hosts"
refused --url "$url" --param "identity=$SFTP_KEY" \
    --param "known_hosts=$VV_TMP/empty_known_hosts"
assert_contains "$ERR" "$fp" "unknown host key names the fingerprint"
assert_contains "$ERR" "$VV_TMP/empty_known_hosts" "unknown host key names the file"
# A changed key: the file holds another key for the same host and port.
ssh-keygen -q -t ed25519 -N '' -f "$VV_TMP/other_host"
echo "[127.0.0.1]:$SFTP_PORT $(cut -d' ' -f1,2 "$VV_TMP/other_host.pub")" > "$VV_TMP/changed_known_hosts"
refused --url "$url" --param "identity=$SFTP_KEY" \
    --param "known_hosts=$VV_TMP/changed_known_hosts"
assert_contains "$ERR" "CHANGED" "changed host key"
assert_contains "$ERR" "$fp" "changed host key names the offered fingerprint"
ssh-keygen -q -t ed25519 -N '' -f "$VV_TMP/stranger"
refused --url "$url" --param "identity=$VV_TMP/stranger" \
    --param "known_hosts=$SFTP_KNOWN_HOSTS"
assert_contains "$ERR" "refused key $VV_TMP/stranger" "key not authorized"
cp "$SFTP_KEY" "$VV_TMP/open_key"; chmod 0644 "$VV_TMP/open_key"
refused --url "$url" --param "identity=$VV_TMP/open_key" \
    --param "known_hosts=$SFTP_KNOWN_HOSTS"
assert_contains "$ERR" "readable only by it" "identity readable by others"
ln -s "$SFTP_KEY" "$VV_TMP/link_key"
refused --url "$url" --param "identity=$VV_TMP/link_key" \
    --param "known_hosts=$SFTP_KNOWN_HOSTS"
assert_contains "$ERR" "symbolic link" "identity through a symbolic link"
refused --url "$url" --param "identity=$SFTP_KEY"
assert_contains "$ERR" "known_hosts" "known_hosts is required"
refused --url "$url" "${params[@]}" --param password=x
assert_contains "$ERR" "unknown parameter password" "unknown parameter"
assert_eq "$(vv target list --json | jq '[.[] | select(.name=="bad")] | length')" 0 "refused targets are not added"

vv target add off --url "$url" "${params[@]}" >/dev/null || fail "target add off"
out=$(vv target test off) || fail "target test off: $out"
assert_eq "$(find "$export_dir" -mindepth 1 | wc -l)" 0 "target test leaves nothing on the server"

# ---- a full and two incrementals ----
ids=()
TARGET=off
w "write -P 0x11 0 2M"
w "write -P 0x12 40M 1M"
backup_point full
w "write -P 0x21 1M 1M"
backup_point incremental
w "write -P 0x31 10M 512k"
w "write -z 40M 64k"
backup_point incremental
[ -z "$(find "$export_dir" -name '.*.tmp-*')" ] || fail "temporary files left: $(find "$export_dir" -name '.*.tmp-*')"

for i in 0 2; do
    vv restore "${ids[$i]}" --to "$VV_TMP/r$i" --format raw >/dev/null || fail "restore ${ids[$i]}"
    "$QEMU_IMG" compare -q -f raw -F raw "$VV_TMP/ref-${ids[$i]}.raw" "$VV_TMP/r$i/vda.raw" ||
        fail "restore of ${ids[$i]} differs from the disk at backup time"
done
new=vvtest-sftpnew-$$
cleanup_fn "virsh destroy '$new'; virsh undefine '$new'"
out=$(vv restore "${ids[2]}" --as-new "$new" --to "$VV_TMP/new" --format raw --json) || fail "restore --as-new: $out"
virsh dominfo "$new" >/dev/null || fail "restored domain $new is not defined"
"$QEMU_IMG" compare -q -f raw -F raw "$VV_TMP/ref-${ids[2]}.raw" "$VV_TMP/new/vda.raw" ||
    fail "disk of the new domain differs"

# ---- the server dies in the middle of an upload ----
published_before=$(cd "$export_dir" && find . -type f ! -name '.*.tmp-*' | sort)
w "write -P 0x41 0 62M"
out=$(vv backup "$dom" --target off --full --json) || fail "backup start"
job=$(jq -r .job.id <<<"$out")
# The server goes away as soon as the image's temporary file has data on
# it: the upload is certainly under way (the image is 62 MiB).
upload_started () {
    [ -n "$(find "$export_dir" -name '.vda.qcow2.tmp-*' -size +0 2>/dev/null)" ]
}
for i in $(seq 1 1500); do
    upload_started && break
    [ "$(vv job show "$job" --json | jq -r .status)" = running ] ||
        fail "backup job $job ended before its upload was seen"
    sleep 0.01
done
upload_started || fail "no upload of job $job seen within 15 s"
sftp_server_stop "$srv"
j=$(wait_job "$job" failed completed)
assert_eq "$(jq -r .status <<<"$j")" failed "backup with the server gone"
assert_eq "$(cd "$export_dir" && find . -type f ! -name '.*.tmp-*' | sort)" "$published_before" \
    "nothing of the failed backup is published"
sftp_server_start "$srv" "$SFTP_PORT" || fail "cannot restart sshd"
backup_point incremental
vv restore "${ids[3]}" --to "$VV_TMP/r3" --format raw >/dev/null || fail "restore ${ids[3]}"
"$QEMU_IMG" compare -q -f raw -F raw "$VV_TMP/ref-${ids[3]}.raw" "$VV_TMP/r3/vda.raw" ||
    fail "restore of the backup after the server came back differs"

# ---- out of space ----
small=$VV_TMP/small
mkdir -p "$small"
mount -t tmpfs -o size=2M,mode=0700 vvtest-sftp-small "$small" || fail "mount tmpfs"
cleanup_fn "umount -l '$small'"
vv target add small --url "sftp://root@127.0.0.1:$SFTP_PORT$small" "${params[@]}" >/dev/null || fail "target add small"
expect_failure vv backup "$dom" --target small --full --wait
assert_contains "$ERR" "space" "out of space is reported as such"
assert_eq "$(find "$small" -type f | wc -l)" 0 "a failed backup leaves no file on the full target"

# ---- a fresh daemon imports the chain from the target ----
stop_daemon
VV_STATE=$VV_TMP/state2
start_daemon
vv target add old --url "$url" "${params[@]}" >/dev/null || fail "target add old (new catalog)"
out=$(vv target import old) || fail "target import: $out"
assert_eq "$(vv list --json | jq '[.[] | select(.status=="completed")] | length')" 4 "backups imported"
vv restore "${ids[2]}" --to "$VV_TMP/r2b" --format raw >/dev/null || fail "restore after import"
"$QEMU_IMG" compare -q -f raw -F raw "$VV_TMP/ref-${ids[2]}.raw" "$VV_TMP/r2b/vda.raw" ||
    fail "restore after import differs"
exit 0
