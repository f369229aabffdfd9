#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The nfs target against a real NFS server (nfs-ganesha, VFS backend, on
# a loopback port: tests/nfs-server.sh), reached with libnfs, nothing
# mounted:
# - the plugin alone (nfs-plugin-check, NFSv3 and NFSv4): size checks of
#   put_begin2, EEXIST on publish, read handles, temporary names hidden
#   and removed, links refused, URL options validated;
# - target add / test; a full and two incrementals of a real domain,
#   the newest restored to a directory and compared with the disk;
# - the server stopped in the middle of an upload: the backup fails
#   within the timeout, no manifest of it appears, the next one succeeds
#   once the server is back;
# - a target out of space (a small tmpfs exported as a second export);
# - import on a fresh daemon from the target.
source "${abs_top_srcdir:-$(dirname "$0")/..}/tests/functions.sh"

requires_cmd ganesha.nfsd rpcbind socat nsenter unshare
server=$abs_top_srcdir/tests/nfs-server.sh
plugin=$abs_top_builddir/plugins/nfs/.libs/virtvault-nfs-plugin.so
[ -e "$plugin" ] || fail "the nfs plugin is not built ($plugin)"

dom=vvtest-nfs-$$
make_domain "$dom" 64
ref=$VV_TMP/ref-vda.raw
truncate -s 64M "$ref"
w () { guest_write "$dom" vda "$1"; ref_write "$ref" "$1"; }

# ---- the server: a free port pair, the export, a small tmpfs export ----
port=$(free_port_pair) || fail "no free port pair for the NFS server"
export_dir=$VV_TMP/nfs-export small=$VV_TMP/nfs-small srv=$VV_TMP/nfs-server
mkdir -p "$export_dir" "$small" "$srv"
mount -t tmpfs -o size=4m tmpfs "$small" || fail "cannot mount a tmpfs for the small export"
cleanup_fn "umount -l '$small'"
cleanup_fn "'$server' stop '$srv'"
t0=$(date +%s.%N)
"$server" start "$srv" "$export_dir" "$port" "$small" || fail "the NFS server did not start"
echo "ganesha ready in $(awk -v a="$t0" -v b="$(date +%s.%N)" "BEGIN { printf \"%.1f\", b - a }") s"
opts="nfsport=$port&mountport=$((port + 1))&timeout=5"
url="nfs://127.0.0.1$export_dir?$opts"

# ---- the plugin alone, NFSv3 and NFSv4 ----
"$abs_top_builddir/tests/nfs-plugin-check" "$plugin" "$url" "$export_dir" ||
    fail "nfs-plugin-check (NFSv3)"
rm -rf "${export_dir:?}"/c1 "$export_dir"/c2
"$abs_top_builddir/tests/nfs-plugin-check" "$plugin" \
    "nfs://127.0.0.1/export?version=4&nfsport=$port&timeout=5" "$export_dir" ||
    fail "nfs-plugin-check (NFSv4)"
rm -rf "${export_dir:?}"/c1 "$export_dir"/c2
assert_eq "$(find "$export_dir" -mindepth 1 | wc -l)" 0 "the export after the plugin checks"

# ---- target add / test ----
start_daemon
expect_failure vv target add bad --url "nfs://127.0.0.1$export_dir?$opts&uid=0"
assert_contains "$ERR" "unknown option 'uid'" "a libnfs option the plugin does not accept"
# A path the server does not export to this host: the mount is refused.
# (target add checks it where the daemon does so, else target test does.)
if ERR=$(vv target add denied --url "nfs://127.0.0.1/not/exported?$opts" 2>&1 >/dev/null); then
    expect_failure vv target test denied
fi
assert_contains "$ERR" "Permission denied" "a mount the server refuses"
vv target add nas --url "$url" >/dev/null || fail "target add nas"
out=$(vv target test nas) || fail "target test nas: $out"
echo "target test: $out"
assert_eq "$(find "$export_dir" -type f | wc -l)" 0 "target test leaves nothing"

ids=()
backup () { backup_with_ref "$dom" "$ref" "$@"; }  # EXPECTED_TYPE [options]
restores_as_ref () {  # ID
    rm -rf "$VV_TMP/r"
    vv restore "$1" --to "$VV_TMP/r" --format raw >/dev/null || fail "restore $1"
    "$QEMU_IMG" compare -q -f raw -F raw "$VV_TMP/ref-$1.raw" "$VV_TMP/r/vda.raw" ||
        fail "backup $1 does not restore to the disk content at its point"
}
no_temp_names () {
    [ -z "$(find "$export_dir" -name '.*.nfspart-*')" ]
}

t0=$(date +%s.%N)
w "write -P 0x11 0 8M"
w "write -P 0x12 40M 1M"
backup full
echo "full backup (9 MiB of data) in $(awk -v a="$t0" -v b="$(date +%s.%N)" "BEGIN { printf \"%.1f\", b - a }") s"
w "write -P 0x21 1M 1M"
backup incremental
w "write -P 0x31 10M 512k"
w "write -z 40M 64k"
backup incremental
restores_as_ref "${ids[2]}"
restores_as_ref "${ids[0]}"
no_temp_names || fail "temporary names left after the backups: $(find "$export_dir" -name '.*.nfspart-*')"
uuid=$(jq -r .domain_uuid <<<"$LAST")
[ -s "$export_dir/$uuid/$(jq -r .chain_id <<<"$LAST")/${ids[2]}/manifest.json" ] ||
    fail "no manifest of ${ids[2]} on the export"

# ---- the server stopped in the middle of an upload ----
head -c 24M /dev/urandom > "$VV_TMP/random.bin"
w "write -s $VV_TMP/random.bin 16M 24M"
out=$(vv backup "$dom" --target nas --json) || fail "backup start: $out"
job=$(jq -r .job.id <<<"$out") failed_id=$(jq -r .backup.id <<<"$out")
hold_backup_midway "$dom" "$job"
"$server" stop-nfsd "$srv" || fail "stopping ganesha"
t0=$(date +%s)
kill -CONT "$QEMU_PID"
j=$(wait_job "$job" failed completed)
elapsed=$(( $(date +%s) - t0 ))
assert_eq "$(jq -r .status <<<"$j")" failed "the backup whose server went away"
echo "failed after ${elapsed} s: $(jq -r .error <<<"$j")"
[ "$elapsed" -le 60 ] || fail "the backup took $elapsed s to fail (timeout=5)"
assert_eq "$(vv show "$failed_id" --json | jq -r .status)" failed "status of the interrupted backup"
vv list --json >/dev/null || fail "the daemon does not answer after the failure"
"$server" start-nfsd "$srv" || fail "restarting ganesha"
# Nothing of it is visible: no manifest (restore, verify and import see
# none) and no temporary name in a listing.  Its images stay until the
# engine's cleanup reaches the target again.
[ -z "$(find "$export_dir" -path "*/$failed_id/manifest.json")" ] ||
    fail "the manifest of the interrupted backup is on the export"
echo "left on the export by the interrupted backup: $(find "$export_dir" -path "*/$failed_id/*" -type f -printf '%f ')"
backup incremental
restores_as_ref "${ids[3]}"

# ---- out of space: the 4 MiB export ----
vv target add small --url "nfs://127.0.0.1$small?$opts" >/dev/null || fail "target add small"
expect_failure vv backup "$dom" --target small --full --wait
assert_contains "$ERR" "space" "the backup to a full export"
wait_for 30 "the full export emptied" eval '[ -z "$(find "$small" -type f)" ]'

# ---- import on a fresh daemon ----
import_into_new_catalog old "$url"
assert_contains "$IMPORT_OUT" "Imported 4 backups from target 'old'" "import from the NFS target"
restores_as_ref "${ids[3]}"
echo "nfs target: ok"
