# SPDX-License-Identifier: LGPL-2.1-or-later
# Shared by the benchmarks: a scratch directory, a running TCG domain
# whose 4 GiB (--size-gib) qcow2 disk holds 1.5 GiB (--data-gib) of
# incompressible data in 32 MiB chunks spread over the disk, and a
# private virtvaultd with its socket.  Sourced with top, work, dom,
# size_gib and data_mib set; removes everything on exit.

sock=$work/state/virtvaultd.sock
vv () { "$top/_build/virtvault" --socket "$sock" "$@"; }

cleanup () {
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
