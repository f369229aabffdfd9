#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Incremental backup and chain restore benchmark: one running domain with a
# 4 GiB qcow2 disk holding 1.5 GiB of incompressible data (as
# bench/full-backup.sh).  Each run, on the same disk and daemon:
#   full        virtvault backup DOM --full --wait
#   inc N %     writes N % of the disk through the guest's device (HMP
#               qemu-io, so the dirty bitmap sees them): half in 64 KiB
#               writes scattered over the disk, half in sequential runs of
#               4 MiB, a quarter of those zero writes (write -z); then
#               virtvault backup DOM --incremental --wait
#   chain       1, 5, 20, 1 and 1 %: a full and 5 incrementals
#   restore     virtvault restore TOP --to DIR --format qcow2|raw (every
#               image's sha256 checked, output fsynced), against
#               qemu-img convert -O qcow2|raw of the same stored chain,
#               then sync
# Backups and restores start with a cold page cache when possible.  The
# table gives the median of RUNS (default 3).  Bytes read are the backup
# job's bytes_done (what the NBD reader fetched); dirty bytes are what
# the writes covered.  Needs root, libvirtd and a build in _build.
#
# Each restore comparison is repeated --restores times per run (default
# 3, alternating virtvault and qemu-img), since single restores on a
# shared VM scatter by +-30 %.
#
#   bench/incremental.sh [--runs N] [--restores K] [--size-gib 4] [--data-gib 1.5] [--out FILE]
set -euo pipefail
cd "$(dirname "$0")/.."
top=$(pwd)

runs=3 restores=3 size_gib=4 data_mib=1536 out=
while [ $# -gt 0 ]; do
    case $1 in
        --runs) runs=$2; shift 2 ;;
        --restores) restores=$2; shift 2 ;;
        --size-gib) size_gib=$2; shift 2 ;;
        --data-gib) data_mib=$(awk "BEGIN{print int($2*1024)}"); shift 2 ;;
        --out) out=$2; shift 2 ;;
        *) echo "usage: $0 [--runs N] [--restores K] [--size-gib G] [--data-gib G] [--out FILE]" >&2; exit 2 ;;
    esac
done
[ -x _build/virtvault ] || { echo "build first: ./run-tests.sh or ./quickstart.sh" >&2; exit 1; }

work=/var/tmp/virtvault-bench-inc
dom=vvbinc-$$
source "$top/bench/bench-lib.sh"

# backup MODE: times one backup; prints "seconds bytes_read stored id".
backup () {
    local s e id job rd stored
    drop_caches
    s=$(now)
    id=$(vv backup "$dom" "--$1" --wait)
    e=$(now)
    job=$(vv --json job list | jq -r --arg b "$id" '[.[] | select(.backup_id == $b)][0]')
    rd=$(jq -r '.bytes_done' <<<"$job")
    stored=$(vv show "$id" --json | jq -r '[.disks[].stored_bytes] | add')
    echo "$(elapsed "$s" "$e") $rd $stored $id"
}

# restore ID FORMAT: virtvault restore against qemu-img convert of the
# same stored top image; prints "vv_seconds qemu_img_seconds".
restore () {
    local id=$1 fmt=$2 s e t1 t2 topimg
    rm -rf "$work/out"; mkdir -p "$work/out"
    drop_caches
    s=$(now)
    vv restore "$id" --to "$work/out/vv" --format "$fmt" >/dev/null
    e=$(now)
    t1=$(elapsed "$s" "$e")
    topimg=$(find "$work/state" -path "*/$id/vda.qcow2" | head -1)
    [ -n "$topimg" ] || { echo "cannot find the stored image of $id" >&2; exit 1; }
    rm -rf "$work/out"; mkdir -p "$work/out"
    drop_caches
    s=$(now)
    qemu-img convert -f qcow2 -O "$fmt" "$topimg" "$work/out/convert.$fmt"
    sync "$work/out/convert.$fmt"
    e=$(now)
    t2=$(elapsed "$s" "$e")
    rm -rf "$work/out"
    echo "$t1 $t2"
}

load0=$(cut -d' ' -f1-3 /proc/loadavg)
pcts=(1 5 20 1 1)
declare -A col
for run_no in $(seq 1 "$runs"); do
    read -r t r st id < <(backup full)
    col[full_t]+="$t "; col[full_r]+="$r "; col[full_s]+="$st "
    echo "  run $run_no full: ${t} s, read $r, stored $st" >&2
    for k in "${!pcts[@]}"; do
        s=$(now)
        d=$(dirty "${pcts[$k]}")
        w=$(elapsed "$s" "$(now)")
        read -r t r st id < <(backup incremental)
        col[t$k]+="$t "; col[r$k]+="$r "; col[s$k]+="$st "; col[d$k]=$d
        echo "  run $run_no inc $((k + 1)) (${pcts[$k]} %, $d bytes dirtied in $w s): ${t} s, read $r, stored $st" >&2
    done
    for rep in $(seq 1 "$restores"); do
        for fmt in qcow2 raw; do
            read -r a b < <(restore "$id" "$fmt")
            col[rv_$fmt]+="$a "; col[rq_$fmt]+="$b "
            echo "  run $run_no restore $fmt ($rep): virtvault $a s, qemu-img convert $b s" >&2
        done
    done
done

med () { printf '%s\n' ${col[$1]} | median; }
mib () { awk "BEGIN{printf \"%.1f\", $1 / 1048576}"; }
full_t=$(med full_t)
{
    echo "| backup | dirtied (MiB) | median of $runs (s) | vs full | read (MiB) | read / dirtied | stored (MiB) |"
    echo "|---|---|---|---|---|---|---|"
    echo "| full | - | $full_t | 1.00 | $(mib "$(med full_r)") | - | $(mib "$(med full_s)") |"
    for k in "${!pcts[@]}"; do
        t=$(med "t$k"); r=$(med "r$k"); d=${col[d$k]}
        echo "| inc $((k + 1)): ${pcts[$k]} % | $(mib "$d") | $t | $(awk "BEGIN{printf \"%.3f\", $t / $full_t}") |" \
             "$(mib "$r") | $(awk "BEGIN{printf \"%.3f\", $r / $d}") | $(mib "$(med "s$k")") |"
    done
    echo
    echo "| restore of full + 5 incrementals (median of $((runs * restores))) | virtvault restore --to (s) | qemu-img convert + sync (s) | ratio |"
    echo "|---|---|---|---|"
    for fmt in qcow2 raw; do
        a=$(med "rv_$fmt"); b=$(med "rq_$fmt")
        echo "| $fmt | $a | $b | $(awk "BEGIN{printf \"%.2f\", $a / $b}") |"
    done
    echo
    echo "disk ${size_gib} GiB, data ${data_mib} MiB; medians of $runs runs; $(nproc) cores;" \
         "load before: $load0; $(date -u +%Y-%m-%d); virtvault $(vv version 2>/dev/null | head -1)"
} | tee ${out:+"$out"}
