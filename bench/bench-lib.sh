# SPDX-License-Identifier: LGPL-2.1-or-later
# Shared by the benchmarks: a scratch directory, a running TCG domain
# whose 4 GiB (--size-gib) qcow2 disk holds 1.5 GiB (--data-gib) of
# incompressible data in 32 MiB chunks spread over the disk, and a
# private virtvaultd with its socket; timing, medians, guest writes and
# the nbdcopy comparison.  Sourced with top, work, dom, size_gib and
# data_mib set; removes everything on exit (and runs bench_cleanup
# first when the script defines it, for its own servers).

sock=$work/state/virtvaultd.sock
vv () { "$top/_build/virtvault" --socket "$sock" "$@"; }

cleanup () {
    set +e   # every step, whatever failed before
    declare -F bench_cleanup >/dev/null && bench_cleanup
    virsh -q destroy "$dom" >/dev/null 2>&1 || true
    [ -n "${dpid:-}" ] && kill "$dpid" 2>/dev/null && wait "$dpid" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT
rm -rf "$work"; mkdir -p "$work/images" "$work/out"; chmod 0755 "$work" "$work/images"

echo "preparing a ${size_gib} GiB disk with ${data_mib} MiB of random data ..." >&2
disk=$work/images/disk.qcow2
qemu-img create -q -f qcow2 "$disk" "${size_gib}G"
chunk_mib=32
chunks=$((data_mib / chunk_mib))
stride=$(( (size_gib * 1024) / chunks ))   # MiB between chunk starts
cmds=()
for i in $(seq 0 $((chunks - 1))); do
    head -c ${chunk_mib}M /dev/urandom > "$work/chunk.$i"
    cmds+=(-c "write -s $work/chunk.$i $((i * stride))M ${chunk_mib}M")
done
qemu-io -f qcow2 "$disk" "${cmds[@]}" >/dev/null
rm -f "$work"/chunk.*
# The alias names the guest device for HMP qemu-io (guest writes).
cat > "$work/dom.xml" <<XML
<domain type='qemu'><name>$dom</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>
<os><type arch='x86_64' machine='pc'>hvm</type></os>
<devices><disk type='file' device='disk'><driver name='qemu' type='qcow2'/>
<source file='$disk'/><target dev='vda' bus='virtio'/><alias name='ua-vvdisk'/></disk></devices></domain>
XML
virsh -q create "$work/dom.xml" >/dev/null

"$top/_build/virtvaultd" --foreground --state-dir "$work/state" --socket "$sock" \
    >"$work/daemon.log" 2>&1 &
dpid=$!
for i in $(seq 1 100); do vv version >/dev/null 2>&1 && break; sleep 0.1; done

drop_caches () { sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true; }
now () { date +%s.%N; }
elapsed () { awk "BEGIN{printf \"%.2f\", $2 - $1}"; }
# median: of the numbers on stdin, one a line (of an even count, the
# mean of the middle two, so 2 rounds do not just give the faster one).
median () {
    sort -n | awk '{a[NR]=$1} END {if (NR % 2) print a[(NR+1)/2]; else printf "%.2f\n", (a[NR/2] + a[NR/2+1]) / 2}'
}

# timed CMD...: runs CMD (its output as it is) and sets T to its seconds.
timed () {
    local s
    s=$(now)
    "$@" || { echo "failed: $*" >&2; exit 1; }
    T=$(elapsed "$s" "$(now)")
}

# nbdcopy --flush from a pull-mode backup export of the domain's disk to
# a sparse raw file (in OUT_DIR, default $work/out); prints the seconds.
t_nbdcopy () {
    local nsock=$work/nbd/nbd.sock s e dst=${1:-$work/out}/nbdcopy.raw
    mkdir -p "$work/nbd"; chown libvirt-qemu: "$work/nbd" 2>/dev/null || chmod 0777 "$work/nbd"
    cat > "$work/backup.xml" <<XML
<domainbackup mode='pull'><server transport='unix' socket='$nsock'/>
<disks><disk name='vda' backup='yes' type='file'><scratch file='$work/nbd/vda.scratch'/></disk></disks></domainbackup>
XML
    virsh -q backup-begin "$dom" "$work/backup.xml" >/dev/null
    drop_caches
    s=$(now)
    nbdcopy --flush "nbd+unix:///vda?socket=$nsock" "$dst"
    e=$(now)
    virsh -q domjobabort "$dom" >/dev/null
    rm -rf "$work/nbd" "$dst"
    awk "BEGIN{printf \"%.2f\", $e - $s}"
}

# dirty PCT [disk|data]: writes PCT % of the disk (disk, the default) or
# of the data written at preparation (data: only inside the 32 MiB
# chunks, so the disk's allocation, and with it the next full, stays the
# same) through the guest's virtio device (HMP qemu-io, so the dirty
# bitmap sees them); prints the bytes written.  Half goes as sequential
# 4 MiB runs (with disk, every fourth a zero write), half as 64 KiB
# writes at clusters the runs do not touch, so no byte is counted twice.
# One virsh process sends every HMP command over one connection (a virsh
# per write costs ~0.1 s).
seed=0
dirty () {
    local pct=$1 mode=${2:-disk} blk=65536 run=$((4 << 20)) space
    if [ "$mode" = data ]; then space=$((chunks * chunk_mib << 20)); else space=$((size_gib << 30)); fi
    local total=$(( space / 100 * pct ))
    local nruns=$(( total / 2 / run ))
    local nblks=$(( (total - nruns * run) / blk ))
    local clusters=$(( space / blk )) per_run=$((run / blk))
    local dev=/machine/peripheral/ua-vvdisk/virtio-backend
    seed=$((seed + 1))
    awk -v seed="$seed" -v nruns="$nruns" -v nblks="$nblks" -v clusters="$clusters" \
        -v per_run="$per_run" -v blk="$blk" -v dom="$dom" -v dev="$dev" -v mode="$mode" \
        -v chunkb=$((chunk_mib << 20)) -v strideb=$((stride << 20)) '
        # an offset of the space written to -> its offset on the disk
        function at(x) { return mode == "data" ? int(x / chunkb) * strideb + x % chunkb : x }
        BEGIN {
            srand(seed)
            slots = int(clusters / per_run)
            for (i = 0; i < nruns; i++) {
                do s = int(rand() * slots); while (s in used)
                used[s] = 1
                z = (mode == "disk" && i % 4 == 3) ? "-z" : sprintf("-P %d", (seed * 7 + i) % 250 + 1)
                printf "qemu-monitor-command %s --hmp \"qemu-io -d %s \\\"write %s %.0f %.0f\\\"\"\n", \
                    dom, dev, z, at(s * per_run * blk), per_run * blk
            }
            for (i = 0; i < nblks; i++) {
                do c = int(rand() * clusters); while (int(c / per_run) in used || c in taken)
                taken[c] = 1
                printf "qemu-monitor-command %s --hmp \"qemu-io -d %s \\\"write -P %d %.0f %.0f\\\"\"\n", \
                    dom, dev, (seed * 13 + i) % 250 + 1, at(c * blk), blk
            }
        }' > "$work/hmp.cmds"
    virsh -q < "$work/hmp.cmds" > "$work/hmp.out" 2>&1 || true
    if grep -qi "error\|fail" "$work/hmp.out"; then
        echo "qemu-io through HMP failed:" >&2; head -5 "$work/hmp.out" >&2; exit 1
    fi
    echo $((nruns * run + nblks * blk))
}
