#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Storage target benchmark: the same full backup of a running domain (as
# bench/full-backup.sh: 1.5 GiB of incompressible data on a 4 GiB qcow2
# disk) to each target on loopback, side by side with a plain transfer
# of the same number of bytes to the same server, and restores against
# a plain download of the same stored objects:
#   file   a file:// directory       cp + sync          (and nbdcopy --flush
#                                                         from a pull-mode export)
#   nfs    nfs-ganesha, NFSv3 via libnfs (tests/nfs-server.sh)
#                                     nfs-cp, then sync of the file on the
#                                     server (what the plugin's COMMIT does)
#   s3     Ceph RGW, bluestore (tests/s3-server.sh)
#                                     curl -T / curl -o with --aws-sigv4
#   sftp   OpenSSH sshd (tests/sftp-server.sh)
#                                     sftp -b: put -f / get -f (fsync)
# Per target and round: full backup | plain upload of a file of the
# full's stored size; 5 incrementals after guest writes of INC_PCTS % of
# the data (inside the data, so every full has the same size); restore
# --to DIR --format qcow2 of the full | plain download of its image;
# restore of the 5th incremental | plain download of every image of its
# chain (the bytes stored for that point).  Downloads end with an fsync
# of the local file, as a restore does.  Cold page cache before each.
# The contenders alternate: virtvault first in odd rounds, the plain
# transfer first in even ones; the table gives medians over the rounds.
# The daemon's peak RSS (VmHWM of virtvaultd, reset through clear_refs
# before each operation) is the largest seen in any round.
# Needs root, libvirtd, a build in _build and the servers' packages
# (scripts/setup-host.sh; nfs-cp is in libnfs-utils).
#
#   [BENCH_SIZE_MB=1536] [ROUNDS=3] [TARGETS="file nfs s3 sftp"]
#   [INC_PCTS="1 5 20 1 1"] [BENCH_DISK_GIB=4] bench/targets.sh [--out FILE]
set -euo pipefail
cd "$(dirname "$0")/.."
top=$(pwd)

data_mib=${BENCH_SIZE_MB:-1536} rounds=${ROUNDS:-3} size_gib=${BENCH_DISK_GIB:-4}
targets=${TARGETS:-file nfs s3 sftp} inc_pcts=(${INC_PCTS:-1 5 20 1 1}) out=
while [ $# -gt 0 ]; do
    case $1 in
        --out) out=$2; shift 2 ;;
        *) echo "usage: [BENCH_SIZE_MB=N] [ROUNDS=N] [TARGETS=\"file nfs s3 sftp\"] $0 [--out FILE]" >&2; exit 2 ;;
    esac
done
num () { [[ $2 =~ ^[0-9]{1,6}$ ]] && [ "$2" -ge "$3" ] || { echo "$1 must be a number >= $3, not '$2'" >&2; exit 2; }; }
num BENCH_SIZE_MB "$data_mib" 32; num ROUNDS "$rounds" 1; num BENCH_DISK_GIB "$size_gib" 1
[ $((data_mib % 32)) = 0 ] || { echo "BENCH_SIZE_MB must be a multiple of 32 (the data is written in 32 MiB chunks)" >&2; exit 2; }
[ $((data_mib * 2)) -le $((size_gib * 1024)) ] || { echo "BENCH_SIZE_MB must be at most half the disk (BENCH_DISK_GIB=$size_gib)" >&2; exit 2; }
[ ${#inc_pcts[@]} = 5 ] || { echo "INC_PCTS must list 5 percentages" >&2; exit 2; }
for p in "${inc_pcts[@]}"; do num INC_PCTS "$p" 1; done
for t in $targets; do
    case $t in file|nfs|s3|sftp) ;; *) echo "unknown target '$t' in TARGETS (file nfs s3 sftp)" >&2; exit 2 ;; esac
done
[ -x _build/virtvault ] || { echo "build first: ./run-tests.sh or ./quickstart.sh" >&2; exit 1; }
for c in nbdcopy nfs-cp curl sftp jq; do
    command -v "$c" >/dev/null || { echo "$c is missing (scripts/setup-host.sh installs it)" >&2; exit 1; }
done

work=/var/tmp/virtvault-bench-targets
dom=vvbtgt-$$
source "$top/tests/sftp-server.sh"
bench_cleanup () {
    [ -n "${s3dir:-}" ] && "$top/tests/s3-server.sh" stop "$s3dir" >/dev/null 2>&1
    [ -n "${nfsdir:-}" ] && "$top/tests/nfs-server.sh" stop "$nfsdir" >/dev/null 2>&1
    [ -n "${sftpdir:-}" ] && sftp_server_stop "$sftpdir"
    return 0
}
load0=$(cut -d' ' -f1-3 /proc/loadavg)
source "$top/bench/bench-lib.sh"

# ---- the servers and targets; root[t] is where a key lives on target t ----
declare -A root
port_free () { ! bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null; }
for t in $targets; do
    mkdir -p "$work/t/$t"
    root[$t]=$work/t/$t
    case $t in
    file)
        vv target add file --url "file://${root[file]}" >/dev/null ;;
    nfs)
        nfsdir=$work/nfs-server nfsport=
        for i in $(seq 20); do
            p=$(( 20000 + (RANDOM % 6000) * 2 ))
            port_free "$p" && port_free "$((p + 1))" && { nfsport=$p; break; }
        done
        [ -n "$nfsport" ] || { echo "no free port pair for the NFS server" >&2; exit 1; }
        mkdir -p "$nfsdir"
        "$top/tests/nfs-server.sh" start "$nfsdir" "${root[nfs]}" "$nfsport" >&2
        nfsopts="nfsport=$nfsport&mountport=$((nfsport + 1))"
        vv target add nfs --url "nfs://127.0.0.1${root[nfs]}?$nfsopts" >/dev/null ;;
    s3)
        # bluestore: memstore would hold every stored byte twice in RAM
        # until RGW's garbage collection, hours after a delete.
        s3dir=$work/s3-server
        eval "$(RGW_TEST_OBJECTSTORE=bluestore RGW_TEST_STORE_BYTES=$(( (data_mib * 16 + 4096) << 20 )) \
            "$top/tests/s3-server.sh" start "$s3dir")"
        bucket=vvbench root[s3]=vv
        s3cred=$work/s3.cred
        printf '[default]\naws_access_key_id = %s\naws_secret_access_key = %s\n' \
            "$S3_ACCESS_KEY" "$S3_SECRET_KEY" > "$s3cred"
        chmod 600 "$s3cred"
        s3 () {  # s3 PATH [curl args]: a signed request, fails on an HTTP error
            local p=$1; shift
            curl -sSf --aws-sigv4 "aws:amz:$S3_REGION:s3" --user "$S3_ACCESS_KEY:$S3_SECRET_KEY" \
                -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" "$@" "$S3_ENDPOINT/$bucket$p"
        }
        s3 "" -X PUT -o /dev/null
        vv target add s3 --url "s3://$bucket/${root[s3]}" --param "endpoint=$S3_ENDPOINT" \
            --param "credentials_file=$s3cred" >/dev/null ;;
    sftp)
        sftpdir=$work/sshd
        sftp_server_start "$sftpdir" >&2
        vv target add sftp --url "sftp://root@127.0.0.1:$SFTP_PORT${root[sftp]}" \
            --param "identity=$SFTP_KEY" --param "known_hosts=$SFTP_KNOWN_HOSTS" >/dev/null ;;
    esac
done

# ---- plain transfers: up_T SRC KEY, down_T KEY DST (DST fsynced) ----
up_file () { cp "$1" "${root[file]}/$2" && sync "${root[file]}/$2"; }
down_file () { cp "${root[file]}/$1" "$2" && sync "$2"; }
up_nfs () { nfs-cp "$1" "nfs://127.0.0.1${root[nfs]}/$2?$nfsopts" >/dev/null && sync "${root[nfs]}/$2"; }
down_nfs () { nfs-cp "nfs://127.0.0.1${root[nfs]}/$1?$nfsopts" "$2" >/dev/null && sync "$2"; }
up_s3 () { s3 "/${root[s3]}/$2" -T "$1" -o /dev/null; }
down_s3 () { s3 "/${root[s3]}/$1" -o "$2" && sync "$2"; }
sftp_batch () {
    sftp -q -b - -i "$SFTP_KEY" -o IdentitiesOnly=yes -o "UserKnownHostsFile=$SFTP_KNOWN_HOSTS" \
        -o StrictHostKeyChecking=yes -P "$SFTP_PORT" root@127.0.0.1 >/dev/null
}
up_sftp () { echo "put -f $1 ${root[sftp]}/$2" | sftp_batch; }
down_sftp () { echo "get -f ${root[sftp]}/$1 $2" | sftp_batch; }
rm_plain () {  # T KEY
    if [ "$1" = s3 ]; then s3 "/${root[s3]}/$2" -X DELETE -o /dev/null; else rm -f "${root[$1]}/$2"; fi
}
down_chain () {  # T KEY...: every image of a chain, one after the other
    local t=$1 k; shift
    for k in "$@"; do "down_$t" "$k" "$work/out/plain/${k//\//_}"; done
}

# ---- virtvault, with the daemon's peak RSS ----
rss_now () { awk '/^VmRSS:/ {printf "%.1f", $2 / 1024}' "/proc/$dpid/status"; }
rss_reset () { echo 5 > "/proc/$dpid/clear_refs"; }
rss_peak () { awk '/^VmHWM:/ {printf "%.1f", $2 / 1024}' "/proc/$dpid/status"; }
declare -A col rss rss0
# note KEY SECONDS [PEAK_RSS START_RSS]: one more value of KEY; the
# largest peak RSS kept, with the RSS the operation started from.
note () {
    col[$1]+="$2 "
    if [ -n "${3:-}" ] && awk "BEGIN{exit !($3 > ${rss[$1]:-0})}"; then rss[$1]=$3 rss0[$1]=$4; fi
}
vv_timed () {  # KEY CMD...: times a virtvault command, output in $work/vv.out
    local k=$1 r0; shift
    drop_caches; r0=$(rss_now); rss_reset
    timed vv "$@" > "$work/vv.out"
    note "$k" "$T" "$(rss_peak)" "$r0"
}
plain_timed () {  # KEY CMD...
    local k=$1; shift
    drop_caches
    timed "$@"
    note "$k" "$T"
}
key_of () {  # ID: the key of its disk image on the target
    vv show "$1" --json | jq -r '"\(.domain_uuid)/\(.chain_id)/\(.id)/vda.qcow2"'
}
stored_of () { vv show "$1" --json | jq -r '[.disks[].stored_bytes] | add'; }
fresh_out () { rm -rf "$work/out"; mkdir -p "$work/out/plain"; }
plain_src=$work/plain.src
plain_source () {  # SIZE: a file of random bytes of that size
    [ "$(stat -c %s "$plain_src" 2>/dev/null)" = "$1" ] && return 0
    head -c "$1" /dev/urandom > "$plain_src"
}

# The contenders of target t in this round, in the order of plain_first.
plain_up () {
    plain_source "${bytes[$t.full]}"
    plain_timed "$t.up" "up_$t" "$plain_src" plain.bin
    rm_plain "$t" plain.bin
    [ "$t" != file ] || note file.nbdcopy "$(t_nbdcopy "${root[file]}")"
}
restore_pair () {  # NAME ID KEY...
    local name=$1 id=$2; shift 2
    local o
    for o in $( [ "$plain_first" = 1 ] && echo plain vv || echo vv plain ); do
        fresh_out
        if [ "$o" = vv ]; then
            vv_timed "$t.r_$name" restore "$id" --to "$work/out/r" --format qcow2
        else
            plain_timed "$t.d_$name" down_chain "$t" "$@"
        fi
    done
    rm -rf "$work/out"
}
declare -A bytes
for round in $(seq 1 "$rounds"); do
    for t in $targets; do
        plain_first=$(( round % 2 == 0 ))
        # -- full backup | plain upload (| nbdcopy for file) --
        [ "$plain_first" = 1 ] && plain_up
        vv_timed "$t.full" backup "$dom" --target "$t" --full --wait
        ids=("$(cat "$work/vv.out")")
        bytes[$t.full]=$(stored_of "${ids[0]}")
        [ "$plain_first" = 1 ] || plain_up
        # -- 5 incrementals (timed together; no plain counterpart) --
        inc_t=0 inc_rss=0
        for p in "${inc_pcts[@]}"; do
            dirty "$p" data >/dev/null
            vv_timed "$t.inc_one" backup "$dom" --target "$t" --incremental --wait
            ids+=("$(cat "$work/vv.out")")
            inc_t=$(awk "BEGIN{print $inc_t + $T}")
        done
        note "$t.inc" "$inc_t" "${rss[$t.inc_one]}" "${rss0[$t.inc_one]}"
        keys=() chain=0
        for id in "${ids[@]}"; do keys+=("$(key_of "$id")"); chain=$((chain + $(stored_of "$id"))); done
        bytes[$t.chain]=$chain
        # -- restores | plain downloads --
        restore_pair full "${ids[0]}" "${keys[0]}"
        restore_pair inc5 "${ids[5]}" "${keys[@]}"
        echo "  round $round $t: full $(echo ${col[$t.full]} | awk '{print $NF}') s," \
             "upload $(echo ${col[$t.up]} | awk '{print $NF}') s, 5 incrementals $inc_t s," \
             "restore full $(echo ${col[$t.r_full]} | awk '{print $NF}') s against $(echo ${col[$t.d_full]} | awk '{print $NF}') s," \
             "restore inc5 $(echo ${col[$t.r_inc5]} | awk '{print $NF}') s against $(echo ${col[$t.d_inc5]} | awk '{print $NF}') s" >&2
        for ((i = ${#ids[@]} - 1; i >= 0; i--)); do vv delete "${ids[$i]}" >/dev/null; done
    done
done

# ---- the table ----
med () { printf '%s\n' ${col[$1]} | median; }
rate () { awk "BEGIN{printf \"%.0f\", $1 / 1048576 / $2}"; }
goals=()
# row T WHAT KEY BYTES PLAIN_WHAT PLAIN_KEY GOAL
row () {
    local t=$1 what=$2 k=$3 b=$4 pw=$5 pk=$6 goal=$7 a p r
    a=$(med "$t.$k"); p=$(med "$t.$pk")
    r=$(awk "BEGIN{printf \"%.2f\", $a / $p}")
    echo "| $t | $what | $(awk "BEGIN{printf \"%.1f\", $b / 1048576}") | $a | $(rate "$b" "$a") | $pw | $p | $(rate "$b" "$p") | $r | ${rss[$t.$k]} (${rss0[$t.$k]}) |"
    goals+=("$t $what: ${r}x $pw (goal <= ${goal}x): $(awk "BEGIN{print ($r <= $goal) ? \"met\" : \"NOT met\"}")")
}
{
    echo "| target | operation | MiB | virtvault (s) | MiB/s | plain transfer | plain (s) | plain MiB/s | ratio | peak RSS (MiB) (at start) |"
    echo "|---|---|---|---|---|---|---|---|---|---|"
    for t in $targets; do
        case $t in
            file) up="cp + sync" down="cp + sync" ;;
            nfs) up="nfs-cp + sync" down="nfs-cp + sync" ;;
            s3) up="curl -T" down="curl -o + sync" ;;
            sftp) up="sftp put -f" down="sftp get -f" ;;
        esac
        row "$t" "full backup" full "${bytes[$t.full]}" "$up" up 1.2
        [ "$t" != file ] || row file "full backup" full "${bytes[file.full]}" "nbdcopy --flush" nbdcopy 1.1
        echo "| $t | 5 incrementals | $(awk "BEGIN{printf \"%.1f\", (${bytes[$t.chain]} - ${bytes[$t.full]}) / 1048576}") | $(med "$t.inc") | | | | | | ${rss[$t.inc]} (${rss0[$t.inc]}) |"
        row "$t" "restore full" r_full "${bytes[$t.full]}" "$down" d_full 1.2
        row "$t" "restore 5th incremental" r_inc5 "${bytes[$t.chain]}" "$down (6 images)" d_inc5 1.2
        goals+=("$t peak RSS: $(printf '%s\n' "${rss[$t.full]}" "${rss[$t.inc]}" "${rss[$t.r_full]}" "${rss[$t.r_inc5]}" | sort -n | tail -1) MiB (goal < 64): $(
            printf '%s\n' "${rss[$t.full]}" "${rss[$t.inc]}" "${rss[$t.r_full]}" "${rss[$t.r_inc5]}" | sort -n | tail -1 | awk '{print ($1 < 64) ? "met" : "NOT met"}')")
    done
    echo
    echo "MiB: stored bytes moved (restore of the 5th incremental: every image of its chain)." \
         "Peak RSS: VmHWM of virtvaultd during the operation, the largest of the rounds (VmRSS when it started)." \
         "Medians of $rounds rounds; disk ${size_gib} GiB, data ${data_mib} MiB; incrementals of ${inc_pcts[*]} % of the data;" \
         "$(nproc) cores; load before: $load0, after: $(cut -d' ' -f1-3 /proc/loadavg);" \
         "$(date -u '+%Y-%m-%d %H:%M UTC'); virtvault $(vv version 2>/dev/null | head -1)."
    echo "virtvaultd at the end: $(awk '/^(VmRSS|RssAnon|RssFile):/ {printf "%s %.1f MiB ", $1, $2 / 1024}' "/proc/$dpid/status")"
    echo
    printf -- '- %s\n' "${goals[@]}"
} | tee ${out:+"$out"}
