#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Broken change tracking, each case followed by a backup that is either a
# correct incremental or a full with the reason stored:
#  - the domain stopped cleanly and started again: stays incremental;
#  - libvirtd restarted: stays incremental;
#  - the domain undefined and defined again (checkpoint metadata gone):
#    the checkpoint is redefined from the catalog, stays incremental;
#  - QEMU killed (bitmaps inconsistent): the incremental turns into a
#    full, the broken checkpoint is deleted, the reason says why; the
#    next backup is incremental again;
#  - a checkpoint made by someone else and a stale virtvault one: never
#    used as a base; the foreign one is left alone, the stale one pruned;
#  - a disk added (stored standalone inside the incremental) and removed
#    (simply absent).
source "${abs_top_srcdir:-$(dirname "$0")/..}/tests/functions.sh"

dom=vvtest-rec-$$
make_domain "$dom" 128
# A persistent domain: stop/start and undefine/define need one.
virsh destroy "$dom" >/dev/null
virsh define "$VV_TMP/$dom.xml" >/dev/null || fail "define $dom"
virsh start "$dom" >/dev/null || fail "start $dom"
# Defined again later from this XML, which keeps the UUID.
virsh dumpxml --inactive "$dom" > "$VV_TMP/$dom.xml" || fail "dumpxml"

ref=$VV_TMP/ref-vda.raw
truncate -s 128M "$ref"
w () { guest_write "$dom" vda "$1"; ref_write "$ref" "$1"; }

start_daemon

# backup TYPE WHAT [options] : a backup of every disk; checks the type
# and that vda restores bit for bit.
backup () {
    local type=$1 what=$2 b id
    shift 2
    b=$(vv backup "$dom" --all-disks --wait --json "$@") || fail "backup after $what: $b"
    id=$(jq -r .id <<<"$b")
    assert_eq "$(jq -r .type <<<"$b")" "$type" "backup after $what ($(jq -r .reason <<<"$b"))"
    vv restore "$id" --to "$VV_TMP/r-$id" --format raw >/dev/null || fail "restore after $what"
    cmp -s "$ref" "$VV_TMP/r-$id/vda.raw" || fail "restored vda after $what differs"
    assert_eq "$(checkpoints_of "$dom" | grep '^virtvault-')" "virtvault-$id" "virtvault checkpoints after $what"
    LAST=$b ID=$id
}

wait_state () {  # state
    local i
    for i in $(seq 1 100); do
        [ "$(virsh domstate "$dom" 2>/dev/null | sed -n 1p)" = "$1" ] && return 0
        sleep 0.1
    done
    fail "domain $dom did not become '$1'"
}

w "write -P 0x01 0 2M"
backup full "the first backup"

# Clean stop and start: persistent bitmaps survive.
virsh destroy "$dom" >/dev/null || fail "destroy"
virsh start "$dom" >/dev/null || fail "start"
w "write -P 0x02 5M 1M"
backup incremental "a clean stop and start"
assert_contains "$(jq -r .reason <<<"$LAST")" "incremental: 1st" "reason after stop/start"

# libvirtd restarted (by its pid; the domain keeps running).
pid=$(cat /run/libvirtd.pid 2>/dev/null) || fail "no /run/libvirtd.pid"
# libvirtd may take a while to wind down (jobs of other domains).
cleanup_fn "pgrep -x libvirtd || libvirtd -d"
kill "$pid"
for i in $(seq 1 600); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
kill -0 "$pid" 2>/dev/null && fail "libvirtd (pid $pid) did not exit within 60 s"
libvirtd -d || fail "cannot start libvirtd again"
libvirtd_answers () { virsh version >/dev/null 2>&1; }
wait_for 30 "libvirtd answering after its restart" libvirtd_answers
w "write -P 0x03 9M 1M"
backup incremental "a libvirtd restart"

# Undefined and defined again: libvirt forgot the checkpoint; it is
# redefined from the XML in the catalog.
virsh destroy "$dom" >/dev/null
virsh undefine --checkpoints-metadata "$dom" >/dev/null || fail "undefine"
virsh define "$VV_TMP/$dom.xml" >/dev/null || fail "define again"
virsh start "$dom" >/dev/null || fail "start after define"
assert_eq "$(checkpoints_of "$dom")" "" "checkpoints after undefine/define"
w "write -P 0x04 13M 1M"
backup incremental "undefine and define"
assert_contains "$(jq -r .reason <<<"$LAST")" "was redefined in libvirt" "reason after undefine/define"

# QEMU killed: bitmaps left inconsistent.  The incremental becomes a full
# of a new chain, and says why.
chain=$(jq -r .chain_id <<<"$LAST")
qpid=$(pgrep -f "guest=$dom,") || fail "no QEMU process"
kill -9 "$qpid"
wait_state "shut off"
virsh start "$dom" >/dev/null || fail "start after kill -9"
w "write -P 0x05 17M 1M"
backup full "QEMU was killed"
assert_contains "$(jq -r .reason <<<"$LAST")" "full: the incremental from checkpoint" "reason after kill -9"
assert_contains "$(jq -r .reason <<<"$LAST")" "bitmap" "reason after kill -9 names the bitmap"
[ "$(jq -r .chain_id <<<"$LAST")" != "$chain" ] || fail "the full after kill -9 continued the old chain"
w "write -P 0x06 21M 1M"
backup incremental "the full after the kill"

# Someone else's checkpoint, and a stale virtvault one unknown to the
# catalog, both newer than ours: neither is used as a base.
parent=$ID
virsh checkpoint-create-as "$dom" foreign-cp >/dev/null || fail "foreign checkpoint"
w "write -P 0x07 25M 1M"
virsh checkpoint-create-as "$dom" virtvault-bk-000000000000 >/dev/null || fail "stale checkpoint"
w "write -P 0x08 29M 1M"
backup incremental "foreign and stale checkpoints"
assert_eq "$(jq -r .parent_id <<<"$LAST")" "$parent" "parent with foreign checkpoints around"
grep -qx foreign-cp <<<"$(checkpoints_of "$dom")" || fail "the foreign checkpoint was touched"
virsh checkpoint-delete "$dom" foreign-cp >/dev/null

# A disk added: stored standalone inside the incremental, then
# incremental itself; removed: simply absent.
"$QEMU_IMG" create -q -f qcow2 "$VV_TMP/images/vdc.qcow2" 32M
virsh destroy "$dom" >/dev/null
sed "s|</devices>|<disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='$VV_TMP/images/vdc.qcow2'/><target dev='vdc' bus='virtio'/></disk></devices>|" \
    "$VV_TMP/$dom.xml" > "$VV_TMP/$dom-vdc.xml"
virsh define "$VV_TMP/$dom-vdc.xml" >/dev/null || fail "define with vdc"
virsh start "$dom" >/dev/null || fail "start with vdc"
guest_write "$dom" vdc "write -P 0x09 1M 1M"
w "write -P 0x0a 33M 1M"
backup incremental "a disk was added"
assert_eq "$(jq -r '.disks | map(.name) | join(",")' <<<"$LAST")" "vda,vdc" "disks with vdc"
assert_eq "$(jq -r '.disks[] | select(.name=="vdc") | .backing' <<<"$LAST")" null "the new disk is standalone"
assert_contains "$(jq -r .notes <<<"$LAST")" "vdc stored in full: not in the last backup" "note on the new disk"
guest_write "$dom" vdc "write -P 0x0b 2M 64k"
w "write -P 0x0c 37M 64k"
backup incremental "the second backup with vdc"
assert_eq "$(jq -r '.disks[] | select(.name=="vdc") | .backing' <<<"$LAST")" "../$(jq -r .parent_id <<<"$LAST")/vdc.qcow2" "vdc is incremental now"
truncate -s 32M "$VV_TMP/ref-vdc.raw"
ref_write "$VV_TMP/ref-vdc.raw" "write -P 0x09 1M 1M"
ref_write "$VV_TMP/ref-vdc.raw" "write -P 0x0b 2M 64k"
cmp -s "$VV_TMP/ref-vdc.raw" "$VV_TMP/r-$ID/vdc.raw" || fail "restored vdc differs"

virsh destroy "$dom" >/dev/null
virsh define "$VV_TMP/$dom.xml" >/dev/null || fail "define without vdc"
virsh start "$dom" >/dev/null || fail "start without vdc"
w "write -P 0x0d 41M 64k"
backup incremental "a disk was removed"
assert_eq "$(jq -r '.disks | map(.name) | join(",")' <<<"$LAST")" "vda" "disks without vdc"
exit 0
