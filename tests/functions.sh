# SPDX-License-Identifier: LGPL-2.1-or-later
# Shared helpers for the shell tests.  Source it first thing:
#
#   source "${abs_top_srcdir:-$(dirname "$0")/..}/tests/functions.sh"
#
# Tests run as root against the real libvirtd (qemu:///system) and the
# daemon built in this tree, each with a private state directory, socket
# and target under a scratch directory that QEMU (user libvirt-qemu) can
# reach.  Everything a test creates is removed by the EXIT trap, also when
# it fails half way.

set -u
set -o pipefail

: "${abs_top_srcdir:=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"
: "${abs_top_builddir:=$abs_top_srcdir}"
: "${QEMU_IMG:=qemu-img}"
export LIBVIRT_DEFAULT_URI=qemu:///system

test_name=$(basename "$0" .sh)

# ---- failing and cleaning up ----

_cleanups=()
cleanup_fn () { _cleanups+=("$*"); }
_run_cleanups () {
    local status=$? i
    for (( i=${#_cleanups[@]}-1; i>=0; i-- )); do
        eval "${_cleanups[$i]}" >/dev/null 2>&1 || true
    done
    # The daemons have exited (and written their leak reports): a
    # sanitizer error fails the test, whatever it checked.
    sanitizer_errors && status=1
    if [ -n "${VV_TMP:-}" ]; then
        chattr -R -i "$VV_TMP" 2>/dev/null
        umount -l "$VV_TMP"/*/ 2>/dev/null
        rm -rf "$VV_TMP"
    fi
    exit $status
}
trap _run_cleanups EXIT
trap 'exit 130' INT TERM

fail () {
    echo "FAIL: $test_name: $*" >&2
    if [ -n "${VV_STATE:-}" ] && [ -f "$VV_STATE/daemon.log" ]; then
        echo "--- last lines of the daemon log ---" >&2
        tail -n 30 "$VV_STATE/daemon.log" >&2
    fi
    exit 1
}

# A component a test needs that is missing is a failure, never a skip:
# CI must not pass quietly without it.
requires () {
    "$@" >/dev/null 2>&1 || fail "requires '$*', which failed: install it (./run-tests.sh installs everything)"
}
requires_cmd () {
    local c
    for c in "$@"; do
        command -v "$c" >/dev/null 2>&1 || fail "requires the command '$c': install it (./run-tests.sh installs everything)"
    done
}

[ "$(id -u)" -eq 0 ] || fail "the integration tests need root (libvirt qemu:///system, QEMU disk labels)"

# ---- scratch space reachable by QEMU ----

# Not under the build tree: a checkout under /root is not traversable by
# libvirt-qemu.
VV_TMP=$(mktemp -d "/var/tmp/vvtest-$test_name.XXXXXX") || fail "mktemp"
chmod 0755 "$VV_TMP"
# (removed last by _run_cleanups)

# ---- sanitizers ----

# When the daemon is built with --enable-sanitizers (run-tests.sh runs
# some of these tests so), its reports go to files here; any report fails
# the test, at stop_daemon or at exit.  For a daemon built without
# sanitizers these settings do nothing.
VV_SANITIZER_LOGS=$VV_TMP/sanitizer
mkdir -p "$VV_SANITIZER_LOGS"
_san_env=(
    "ASAN_OPTIONS=halt_on_error=1:abort_on_error=0:detect_leaks=1:log_path=$VV_SANITIZER_LOGS/asan"
    "UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1:log_path=$VV_SANITIZER_LOGS/ubsan"
    "LSAN_OPTIONS=suppressions=$abs_top_srcdir/tests/lsan.supp:print_suppressions=0"
)
# True (and prints them) when a daemon reported a sanitizer error.
sanitizer_errors () {
    local f found=1
    for f in "$VV_SANITIZER_LOGS"/*; do
        [ -f "$f" ] || continue
        if grep -qE 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' "$f"; then
            echo "FAIL: $test_name: sanitizer report from the daemon ($f):" >&2
            head -n 60 "$f" >&2
            found=0
        fi
    done
    return $found
}

# ---- assertions ----

assert_eq () {  # actual expected what
    [ "$1" = "$2" ] || fail "$3: got '$1', expected '$2'"
}
assert_contains () {  # haystack needle what
    case "$1" in *"$2"*) ;; *) fail "$3: '$1' does not contain '$2'" ;; esac
}
assert_not_contains () {  # haystack needle what
    case "$1" in *"$2"*) fail "$3: '$2' is there" ;; esac
}
# Runs a command that must fail; its stderr ends up in $ERR.
expect_failure () {
    local out
    if out=$("$@" 2>&1 >/dev/null); then
        fail "expected failure of: $*"
    fi
    ERR=$out
}

# ---- libvirt and test domains ----

requires_cmd virsh "$QEMU_IMG" qemu-io jq curl
virsh version >/dev/null 2>&1 || fail "libvirtd is not reachable at qemu:///system: start it with 'libvirtd -d' (run-tests.sh does)"

# make_domain NAME DISK_MB... : creates a running transient TCG domain with
# one virtio qcow2 disk per size (vda, vdb, ...); paths in $DISK_vda etc.
make_domain () {
    local name=$1; shift
    local devs=(vda vdb vdc vdd) i=0 size disks=""
    mkdir -p "$VV_TMP/images"
    chmod 0755 "$VV_TMP/images"
    for size in "$@"; do
        local dev=${devs[$i]} f="$VV_TMP/images/$name-${devs[$i]}.qcow2"
        "$QEMU_IMG" create -q -f qcow2 "$f" "${size}M" || fail "qemu-img create $f"
        eval "DISK_$dev=\$f"
        disks="$disks<disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='$f'/><target dev='$dev' bus='virtio'/></disk>"
        i=$((i+1))
    done
    cat > "$VV_TMP/$name.xml" <<EOF
<domain type='qemu'>
  <name>$name</name>
  <memory unit='MiB'>64</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
  <devices>$disks${EXTRA_DEVICES:-}</devices>
</domain>
EOF
    cleanup_fn "virsh destroy '$name'; virsh undefine --checkpoints-metadata '$name'"
    virsh create "$VV_TMP/$name.xml" >/dev/null || fail "cannot start test domain $name"
}

# make_persistent_domain NAME VDA_MB VDB_MB [VDB_DIR] : a defined
# (persistent) and started TCG domain with two qcow2 disks, vda in
# $VV_TMP/images and vdb in $VV_TMP/VDB_DIR (default images); paths in
# $DISK_vda, $DISK_vdb.  make_domain's domains are transient and vanish
# when stopped, which an in-place restore or an offline backup needs.
make_persistent_domain () {
    local name=$1 dir2=$VV_TMP/${4:-images}
    mkdir -p "$VV_TMP/images" "$dir2"
    chmod 0755 "$VV_TMP/images" "$dir2"
    DISK_vda=$VV_TMP/images/$name-vda.qcow2
    DISK_vdb=$dir2/$name-vdb.qcow2
    "$QEMU_IMG" create -q -f qcow2 "$DISK_vda" "$2M" || fail "qemu-img create $DISK_vda"
    "$QEMU_IMG" create -q -f qcow2 "$DISK_vdb" "$3M" || fail "qemu-img create $DISK_vdb"
    cat > "$VV_TMP/$name.xml" <<EOF
<domain type='qemu'>
  <name>$name</name>
  <memory unit='MiB'>64</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
  <devices>
    <disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='$DISK_vda'/><target dev='vda' bus='virtio'/></disk>
    <disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='$DISK_vdb'/><target dev='vdb' bus='virtio'/></disk>
  </devices>
</domain>
EOF
    cleanup_fn "virsh destroy '$name'; virsh undefine --checkpoints-metadata '$name'"
    virsh define "$VV_TMP/$name.xml" >/dev/null || fail "cannot define test domain $name"
    virsh start "$name" >/dev/null || fail "cannot start test domain $name"
}

# guest_write DOM DEV 'write -P 0xab 1M 4M' : a write through the guest's
# own virtio device, so dirty bitmaps see it.  DEV is vda, vdb, ...
guest_write () {
    local dom=$1 dev=$2 cmd=$3 alias out
    alias=$(virsh dumpxml "$dom" | xmllint --xpath "string(//disk[target/@dev='$dev']/alias/@name)" -) ||
        fail "no alias for $dom/$dev"
    out=$(virsh qemu-monitor-command "$dom" --hmp "qemu-io -d /machine/peripheral/$alias/virtio-backend \"$cmd\"") ||
        fail "guest write '$cmd' on $dom/$dev failed"
    case "$out" in *rror*|*annot*) fail "guest write '$cmd' on $dom/$dev: $out" ;; esac
}

# guest_flush DOM DEV : makes QEMU write its cached qcow2 metadata, so the
# image file can be read from outside (qemu-img -U) while the domain runs.
guest_flush () {
    guest_write "$1" "$2" "flush"
}

# ref_write FILE 'write -P 0xab 1M 4M' : the same write on a raw
# reference image, to know what the disk held at each point.
ref_write () {
    qemu-io -f raw "$1" -c "$2" >/dev/null || fail "reference write '$2' on $1"
}

# True when the domain has no libvirt job (not through grep -q: with
# pipefail, virsh dying of SIGPIPE would fail the pipeline).
libvirt_job_idle () {
    local out
    out=$(virsh domjobinfo "$1" 2>/dev/null) || return 1
    [[ $out =~ Job\ type:\ *None ]]
}
libvirt_backup_running () {
    local out
    out=$(virsh domjobinfo "$1" 2>/dev/null) || return 1
    [[ $out =~ Backup ]]
}

checkpoints_of () {
    virsh checkpoint-list --name "$1" 2>/dev/null | sed '/^$/d'
}

# ---- the daemon under test ----

# start_daemon [extra args] : a private virtvaultd with its own state dir,
# socket and the default 'local' target in it; sets VV_STATE and VV_SOCK.
# As in the default layout (/run/virtvault/virtvaultd.sock), the socket's
# directory does not exist before the daemon creates it, with the mode
# the daemon gives it.
start_daemon () {
    VV_STATE=${VV_STATE:-$VV_TMP/state}
    VV_SOCK=$VV_TMP/run/$(basename "$VV_STATE")/virtvaultd.sock
    start_daemon_args --state-dir "$VV_STATE" --socket "$VV_SOCK" "$@"
}

# start_daemon_args ARGS... : virtvaultd --foreground ARGS, for a state dir
# and socket that ARGS (or a config file in them) set: VV_STATE and
# VV_SOCK must name them.  Waits until it answers; sets VV_PID.
start_daemon_args () {
    mkdir -p "$VV_STATE"
    env "${_san_env[@]}" "$abs_top_builddir/virtvaultd" --foreground "$@" \
        >>"$VV_STATE/daemon.log" 2>&1 &
    VV_PID=$!
    cleanup_fn "kill $VV_PID; wait $VV_PID"
    local i
    for i in $(seq 1 100); do
        [ -S "$VV_SOCK" ] && vv version >/dev/null 2>&1 && return 0
        kill -0 $VV_PID 2>/dev/null || fail "virtvaultd exited at start-up"
        sleep 0.1
    done
    fail "virtvaultd did not answer on $VV_SOCK within 10 s"
}

# stop_daemon : SIGTERM, and waits for it; fails on a sanitizer report.
stop_daemon () {
    kill "$VV_PID" 2>/dev/null
    wait "$VV_PID" 2>/dev/null
    ! sanitizer_errors || fail "the daemon reported a sanitizer error"
}

vv () {
    "$abs_top_builddir/virtvault" --socket "$VV_SOCK" "$@"
}

# api METHOD PATH [BODY] : raw API call (BODY "@FILE" sends a file); prints the body; the HTTP status
# goes to $VV_TMP/http_status (api runs in $(...) subshells), read it with
# http_status.
api () {
    local out
    out=$(curl -sS --unix-socket "$VV_SOCK" -X "$1" -w '\n%{http_code}' \
          ${3+-H 'Content-Type: application/json' --data-binary "$3"} \
          "http://localhost$2") || fail "curl $1 $2"
    printf '%s\n' "${out##*$'\n'}" > "$VV_TMP/http_status"
    printf '%s\n' "${out%$'\n'*}"
}
http_status () { cat "$VV_TMP/http_status"; }

# wait_job_state JOB STATE... : polls until the job is in one of STATEs
# (fails after 120 s); prints the job JSON.
wait_job () {
    local job=$1; shift
    local i j st
    for i in $(seq 1 1200); do
        j=$(vv job show "$job" --json) || fail "job show $job"
        st=$(jq -r .status <<<"$j")
        for s in "$@"; do
            [ "$st" = "$s" ] && { printf '%s\n' "$j"; return 0; }
        done
        sleep 0.1
    done
    fail "job $job did not reach $* within 120 s (last: $st)"
}

# hold_backup_midway DOM JOB : waits until the backup job has started
# reading, then stops the domain's QEMU (SIGSTOP) so NBD reads block and the
# backup is certainly half way; sets QEMU_PID.  Resume with
# 'kill -CONT $QEMU_PID'.  Fails if the backup ended before it was held.
hold_backup_midway () {
    local dom=$1 job=$2 i j reading=
    for i in $(seq 1 1200); do
        j=$(vv job show "$job" --json) || fail "job show $job"
        # Stop as soon as the reading starts (the total is known).
        [ "$(jq -r .status <<<"$j")" = running ] && [ "$(jq -r .bytes_total <<<"$j")" -gt 0 ] &&
            { reading=1; break; }
        case $(jq -r .status <<<"$j") in completed|failed|cancelled)
            fail "backup job $job ended ($(jq -r .status <<<"$j")) before it could be held half way" ;;
        esac
        sleep 0.02
    done
    [ -n "$reading" ] || fail "backup job $job did not start reading within 24 s (last: $(jq -c . <<<"$j"))"
    freeze_qemu "$dom"
    j=$(vv job show "$job" --json)
    [ "$(jq -r .status <<<"$j")" = running ] ||
        { kill -CONT "$QEMU_PID"; fail "backup job $job ended ($(jq -r .status <<<"$j")) before it could be held half way; make the disk hold more data"; }
    [ "$(jq -r .bytes_done <<<"$j")" -lt "$(jq -r .bytes_total <<<"$j")" ] ||
        { kill -CONT "$QEMU_PID"; fail "backup job $job had copied everything before it could be held"; }
}
# kill_daemon_midway DOM JOB : holds the backup JOB half way
# (hold_backup_midway), kills the daemon with SIGKILL, waits for it and
# lets QEMU run again; libvirt's pull-mode job of the dead daemon stays.
kill_daemon_midway () {
    hold_backup_midway "$1" "$2"
    kill -9 "$VV_PID"
    wait "$VV_PID" 2>/dev/null
    kill -CONT "$QEMU_PID"
}
# freeze_qemu DOM : stops the domain's QEMU (SIGSTOP) and waits until every
# thread is stopped: it answers no NBD read and no monitor command (a
# backup started now hangs in libvirt) until 'kill -CONT $QEMU_PID'.
freeze_qemu () {
    QEMU_PID=$(pgrep -f "guest=$1,") || fail "no QEMU process for $1"
    cleanup_fn "kill -CONT $QEMU_PID"
    kill -STOP "$QEMU_PID"
    wait_for 10 "QEMU $QEMU_PID stopped" qemu_stopped "$QEMU_PID"
}
qemu_stopped () {  # PID : every thread of PID is in state T (stopped)
    local f st
    for f in /proc/"$1"/task/*/stat; do
        st=$(sed 's/.*) \(.\).*/\1/' "$f" 2>/dev/null) || return 1
        [ "$st" = T ] || return 1
    done
}

# wait_for SECONDS WHAT COMMAND... : polls COMMAND until it succeeds; fails
# naming WHAT when SECONDS pass first.
wait_for () {
    local secs=$1 what=$2 i; shift 2
    for (( i = 0; i < secs * 20; i++ )); do
        "$@" && return 0
        sleep 0.05
    done
    fail "$what: not so within $secs s"
}

# daemon_logged TEXT : the daemon's log has a line containing TEXT.
daemon_logged () {
    grep -qF -- "$1" "$VV_STATE/daemon.log"
}

# flip FILE OFFSET: inverts one byte in place (same size, same inode).
flip () {
    local b
    b=$(od -An -tu1 -j "$2" -N1 "$1" | tr -d ' ')
    printf "$(printf '\\%03o' $((b ^ 0xff)))" |
        dd of="$1" bs=1 seek="$2" count=1 conv=notrunc status=none || fail "flip $1 at $2"
}

# Objects stored under the target directory (no temp files expected).
target_files () {
    (cd "$1" 2>/dev/null && find . -type f | sort)
}

# backup_with_ref DOM REF EXPECTED_TYPE [options] : a backup of DOM to
# ${TARGET:-nas}, waited for, that must complete as EXPECTED_TYPE; REF (the
# reference raw image of its disk) is kept as $VV_TMP/ref-ID.raw, ID is
# appended to the array ids and the backup's JSON is in $LAST.
backup_with_ref () {
    local dom=$1 ref=$2 type=$3 b id
    shift 3
    b=$(vv backup "$dom" --target "${TARGET:-nas}" --wait --json "$@") || fail "backup ${#ids[@]}: $b"
    id=$(jq -r .id <<<"$b")
    assert_eq "$(jq -r .status <<<"$b")" completed "status of backup $id"
    assert_eq "$(jq -r .type <<<"$b")" "$type" "type of backup $id ($(jq -r .reason <<<"$b"))"
    cp --sparse=always "$ref" "$VV_TMP/ref-$id.raw"
    ids+=("$id")
    LAST=$b
}

# backup_point EXPECTED_TYPE [options] : backup_with_ref of "$dom" and
# "$ref".
backup_point () { backup_with_ref "$dom" "$ref" "$@"; }

# import_into_new_catalog NAME URL : stops the daemon, starts a fresh one
# with an empty catalog (state in $VV_TMP/state2), adds target NAME at URL
# and rebuilds the catalog from it ('target import'); the import's output
# is in $IMPORT_OUT.
import_into_new_catalog () {
    stop_daemon
    VV_STATE=$VV_TMP/state2
    start_daemon
    vv target add "$1" --url "$2" >/dev/null || fail "target add $1 (new catalog)"
    IMPORT_OUT=$(vv target import "$1") || fail "target import: $IMPORT_OUT"
}

# free_port_pair : prints an even P from 30000 with 127.0.0.1:P and P+1
# free (the NFS test server's nfs and mount ports); fails after 20
# tries.
free_port_pair () {
    local i p
    port_free () { ! bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null; }
    for i in $(seq 20); do
        p=$(( 30000 + (RANDOM % 15000) * 2 ))
        port_free "$p" && port_free "$((p + 1))" && { echo "$p"; return 0; }
    done
    return 1
}

# ---- restores that read only what the point needs ----

# ranged_chain : on "$dom" (a 64 MiB vda, reference "$ref", written with
# w), a full of 32 MiB and 5 incrementals that each rewrite the same
# 8 MiB, to ${TARGET}; sets ids and top (the 5th incremental).
ranged_chain () {
    local i
    ids=()
    w "write -P 0x11 0 32M"
    backup_point full
    for i in 1 2 3 4 5; do
        w "write -P 0x2$i 8M 8M"
        backup_point incremental
    done
    top=${ids[5]}
}

# ranged_restores STORED COUNT_FN RESET_FN : restores $top as raw and as
# qcow2; each must be the disk at backup time and make the server read
# (COUNT_FN prints what it read since RESET_FN) the point's 32 MiB and
# at most 6 MiB more (each image's metadata and block digests), not the
# STORED bytes of the chain.
ranged_restores () {
    local stored=$1 count=$2 reset=$3 format out n point_data=$((32 << 20))
    for format in raw qcow2; do
        "$reset"
        vv restore "$top" --to "$VV_TMP/r-$format" --format "$format" >/dev/null ||
            fail "restore $top as $format"
        out=$VV_TMP/r-$format/vda.$format
        "$QEMU_IMG" compare -q -f "$format" -F raw "$out" "$VV_TMP/ref-$top.raw" ||
            fail "restore of the 5th incremental as $format differs from the disk at backup time"
        [ "$format" = raw ] || "$QEMU_IMG" check -q "$out" || fail "qemu-img check of the restored qcow2"
        n=$("$count")
        [ "$n" -ge "$point_data" ] || fail "the server read $n bytes, less than the point's $point_data: the count is wrong"
        [ "$n" -le $((point_data + (6 << 20))) ] ||
            fail "restoring $top as $format read $n bytes at the server; the point holds $point_data and the chain $stored"
        echo "restore of the 5th incremental as $format: $n bytes read at the server (point data $point_data, chain stored $stored)"
    done
    daemon_logged "bytes read in" || fail "the daemon logged no read statistics"
}
