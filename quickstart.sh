#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The newcomer's path, on a Debian 12 machine as root: installs what is
# missing, builds virtvault, starts a private daemon (SQLite catalog and a
# local target under /var/tmp/virtvault-quickstart), backs up a throwaway
# VM, shows, verifies and restores the backup, and proves the restored
# disk is identical to the original.
set -euo pipefail
cd "$(dirname "$0")"
top=$(pwd)
source scripts/setup-host.sh

[ "$(id -u)" -eq 0 ] || { echo "quickstart.sh must run as root (it uses qemu:///system)" >&2; exit 1; }

vv_install_packages
vv_start_libvirt

vv_say "building virtvault"
vv_build _build

demo=/var/tmp/virtvault-quickstart
state=$demo/state
sock=$state/virtvaultd.sock
dom=virtvault-demo
export VIRTVAULT_SOCKET=$sock
vv () { "$top/_build/virtvault" "$@"; }

# Start from a clean demo: stop the daemon an earlier run left.  /var/tmp
# is writable by everyone, so its pid file is read only from directories
# that root owns and only root can write, and the pid is killed only if it
# is this tree's virtvaultd serving this state directory.
root_only_dir () {  # DIR: a real directory, owned by root, not group/other writable
    [ -d "$1" ] && [ ! -L "$1" ] && [ "$(stat -c %u "$1")" = 0 ] &&
        [ $(( 8#$(stat -c %a "$1") & 8#022 )) -eq 0 ]
}
our_daemon () {  # PID: root's $top/_build virtvaultd on $state
    local exe args
    [[ $1 =~ ^[0-9]+$ ]] && [ "$(stat -c %u "/proc/$1" 2>/dev/null)" = 0 ] || return 1
    exe=$(readlink "/proc/$1/exe") || return 1
    # (a rebuild replaces the binary the old daemon runs)
    [ "$exe" = "$top/_build/src/virtvaultd" ] ||
        [ "$exe" = "$top/_build/src/virtvaultd (deleted)" ] || return 1
    args=$(tr '\0' '\n' < "/proc/$1/cmdline") || return 1
    grep -qxF -- "--state-dir" <<<"$args" && grep -qxF -- "$state" <<<"$args"
}
if root_only_dir "$demo" && root_only_dir "$state" && [ -f "$state/virtvaultd.lock" ] &&
        [ ! -L "$state/virtvaultd.lock" ]; then
    pid=$(head -c 32 "$state/virtvaultd.lock" | tr -d '\n')
    if our_daemon "$pid"; then
        kill "$pid"
        for i in $(seq 1 300); do [ -d "/proc/$pid" ] || break; sleep 0.1; done
        [ ! -d "/proc/$pid" ] || { echo "the earlier demo daemon (pid $pid) did not stop within 30 s" >&2; exit 1; }
    fi
elif [ -e "$demo" ]; then
    echo "note: $demo is not root's own: not trusting anything in it; removing it" >&2
fi
virsh -q destroy "$dom" >/dev/null 2>&1 || true
rm -rf "$demo"
# Not -p: fails if someone made it again since.
mkdir -m 0755 "$demo"
mkdir -m 0755 "$demo/images"
mkdir "$demo/files"

vv_say "making a throwaway VM '$dom' with a 256 MiB disk holding an ext4 filesystem"
echo "Hello from virtvault's quickstart, $(date -u)" > "$demo/files/hello.txt"
head -c 32M /dev/urandom > "$demo/files/random.bin"
mkfs.ext4 -q -F -L demo -d "$demo/files" "$demo/images/disk.raw" 256M
qemu-img convert -q -f raw -O qcow2 "$demo/images/disk.raw" "$demo/images/disk.qcow2"
rm -f "$demo/images/disk.raw"
cat > "$demo/$dom.xml" <<XML
<domain type='qemu'>
  <name>$dom</name>
  <memory unit='MiB'>64</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
  <devices>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='$demo/images/disk.qcow2'/>
      <target dev='vda' bus='virtio'/>
    </disk>
  </devices>
</domain>
XML
virsh -q create "$demo/$dom.xml"

vv_say "starting a private virtvaultd (state in $state)"
"$top/_build/virtvaultd" --state-dir "$state" --socket "$sock"
vv target list

vv_say "virtvault backup $dom --wait"
id=$(vv backup "$dom" --wait)
echo "$id"

vv_say "virtvault list"
vv list
vv_say "virtvault show $id"
vv show "$id"
vv_say "virtvault verify $id"
vv verify "$id"

vv_say "virtvault restore $id --to $demo/restore"
vv restore "$id" --to "$demo/restore"
vv_say "comparing the restored disk with the VM's disk"
qemu-img compare -U "$demo/images/disk.qcow2" "$demo/restore/vda.qcow2"

virsh -q destroy "$dom" >/dev/null
cat <<MSG

Done.  The daemon is still running for you to try more:
  export VIRTVAULT_SOCKET=$sock
  $top/_build/virtvault list
  $top/_build/virtvault --help
Stored backups are under $state/backups; stop the daemon with
  kill \$(cat $state/virtvaultd.lock)
MSG
