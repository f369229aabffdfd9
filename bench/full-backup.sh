#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Full backup benchmark: one running domain with a 4 GiB qcow2 disk holding
# 1.5 GiB of incompressible data spread over it.  Times, side by side in one
# run and on the same disk:
#   virtvault   virtvault backup DOM --wait (qcow2 + sha256 + fsync, file target)
#   nbdcopy     nbdcopy --flush from a pull-mode backup export of the same disk
#               to a sparse raw file
#   qemu-img    qemu-img convert -U -O qcow2 of the disk image, then sync
# Each is run RUNS times (default 3) with a cold page cache when possible;
# the table gives the median.  Needs root, libvirtd and a build in _build
# (./run-tests.sh or ./quickstart.sh makes one).
#
#   bench/full-backup.sh [--runs N] [--size-gib 4] [--data-gib 1.5] [--out FILE]
set -euo pipefail
cd "$(dirname "$0")/.."
top=$(pwd)

runs=3 size_gib=4 data_mib=1536 out=
while [ $# -gt 0 ]; do
    case $1 in
        --runs) runs=$2; shift 2 ;;
        --size-gib) size_gib=$2; shift 2 ;;
        --data-gib) data_mib=$(awk "BEGIN{print int($2*1024)}"); shift 2 ;;
        --out) out=$2; shift 2 ;;
        *) echo "usage: $0 [--runs N] [--size-gib G] [--data-gib G] [--out FILE]" >&2; exit 2 ;;
    esac
done
[ -x _build/virtvault ] || { echo "build first: ./run-tests.sh or ./quickstart.sh" >&2; exit 1; }

work=/var/tmp/virtvault-bench
dom=vvbench-$$
source "$top/bench/bench-lib.sh"

t_vv () {
    drop_caches
    local s e id
    s=$(now)
    id=$(vv backup "$dom" --wait)
    e=$(now)
    vv show "$id" --json | jq -r '.disks[0].stored_bytes' > "$work/stored"
    vv delete "$id" >/dev/null
    awk "BEGIN{printf \"%.2f\", $e - $s}"
}

t_qemu_img () {
    local s e
    drop_caches
    s=$(now)
    qemu-img convert -U -f qcow2 -O qcow2 "$disk" "$work/out/convert.qcow2"
    sync "$work/out/convert.qcow2"
    e=$(now)
    rm -f "$work/out/convert.qcow2"
    awk "BEGIN{printf \"%.2f\", $e - $s}"
}

declare -A times
for tool in vv nbdcopy qemu_img; do
    list=()
    for r in $(seq 1 "$runs"); do
        list+=("$("t_$tool")")
        echo "  $tool run $r: ${list[-1]} s" >&2
    done
    times[$tool]=$(printf '%s\n' "${list[@]}" | median)
done

data_bytes=$((data_mib << 20))
rate () { awk "BEGIN{printf \"%.0f\", $data_bytes / 1048576 / $1}"; }
ratio () { awk "BEGIN{printf \"%.2f\", $1 / ${times[nbdcopy]}}"; }
{
    echo "| tool | what it does | median of $runs (s) | MiB/s of data | vs nbdcopy |"
    echo "|---|---|---|---|---|"
    echo "| virtvault backup --wait | pull-mode export -> qcow2 on file target, sha256, fsync | ${times[vv]} | $(rate "${times[vv]}") | $(ratio "${times[vv]}") |"
    echo "| nbdcopy --flush | pull-mode export -> sparse raw file | ${times[nbdcopy]} | $(rate "${times[nbdcopy]}") | 1.00 |"
    echo "| qemu-img convert -O qcow2 | image file -> qcow2 file, then sync | ${times[qemu_img]} | $(rate "${times[qemu_img]}") | $(ratio "${times[qemu_img]}") |"
    echo
    echo "disk ${size_gib} GiB, data ${data_mib} MiB in $chunks chunks; stored by virtvault: $(cat "$work/stored") bytes;" \
         "$(nproc) cores; $(date -u +%Y-%m-%d); virtvault $(vv version 2>/dev/null | head -1)"
} | tee ${out:+"$out"}
