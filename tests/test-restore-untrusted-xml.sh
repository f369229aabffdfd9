#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The domain XML stored on a target is untrusted input.
#
# With the daemon's own catalog: a domain.xml rewritten on the target (and
# the manifest's digest with it) makes restore --as-new and verify refuse
# with a digest mismatch, and nothing is defined or written.
#
# With a catalog rebuilt from the target ('target import', which can only
# take the manifest's digest): the attacker's domain.xml, with
# <qemu:commandline>, a DAC seclabel +0:+0, a <filesystem> passthrough of
# /, a <hostdev>, a file serial port, an <emulator> /bin/sh and an
# interface on a network that does not exist, is restored --as-new
# --start into a domain that has none of them, and the CLI output and the
# job's notes say what was dropped.
source "${abs_top_srcdir:-$(dirname "$0")/..}/tests/functions.sh"

requires_cmd xmllint

dom=vvtest-rux-$$
new1=vvtest-rux-new1-$$
new2=vvtest-rux-new2-$$
serial=/tmp/vvtest-rux-serial-$$
console=/tmp/vvtest-rux-console-$$
make_domain "$dom" 16
uuid=$(virsh domuuid "$dom" | sed -n 1p)
host_emulator=$(virsh domcapabilities --virttype qemu --arch x86_64 --machine pc |
                xmllint --xpath 'string(/domainCapabilities/path)' -) || fail "domcapabilities"
[ -n "$host_emulator" ] || fail "libvirt names no emulator for x86_64 pc"

nas=$VV_TMP/nas
mkdir -p "$nas"
start_daemon
vv target add nas --url "file://$nas" >/dev/null || fail "target add nas"
id=$(vv backup "$dom" --target nas --wait) || fail "backup: $id"
b=$(vv show "$id" --json) || fail "show $id"
chain=$(jq -r .chain_id <<<"$b")
dir=$nas/$uuid/$chain/$id
xml_file=$dir/domain.xml
manifest=$dir/manifest.json

# ---- the digest is recorded in the catalog and the manifest ----

digest=$(jq -r .domain_xml_sha256 <<<"$b")
assert_eq "$digest" "$(sha256sum "$xml_file" | cut -d' ' -f1)" "catalog digest of domain.xml"
assert_eq "$(jq -r .domain_xml.sha256 "$manifest")" "$digest" "manifest digest of domain.xml"
vv verify "$id" >/dev/null || fail "verify of the untouched backup"

cleanup_fn "virsh destroy '$new1'; virsh undefine --nvram '$new1'"
cleanup_fn "virsh destroy '$new2'; virsh undefine --nvram '$new2'; rm -rf '/var/lib/libvirt/images/$new2'"
cleanup_fn "rm -f '$serial' '$console'"

# The attacker's definition: the backed-up domain's name, UUID and disk,
# and everything a definition can do to the host.
cat > "$VV_TMP/evil.xml" <<EOF
<domain type='qemu' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>
  <name>$dom</name>
  <uuid>$uuid</uuid>
  <memory unit='MiB'>64</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
  <devices>
    <emulator>/bin/sh</emulator>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='/etc/shadow'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <filesystem type='mount' accessmode='passthrough'>
      <source dir='/'/>
      <target dir='hostroot'/>
    </filesystem>
    <hostdev mode='subsystem' type='usb'>
      <source><vendor id='0x1d6b'/><product id='0x0002'/></source>
    </hostdev>
    <serial type='file'>
      <source path='$serial'/>
      <target port='0'/>
    </serial>
    <console type='file'>
      <source path='$console'/>
      <target type='serial' port='0'/>
    </console>
    <interface type='network'>
      <source network='vvtest-nonet-$$'/>
      <model type='virtio'/>
    </interface>
    <interface type='user'>
      <model type='virtio'/>
    </interface>
    <graphics type='vnc' port='5999' autoport='no' listen='0.0.0.0'/>
  </devices>
  <seclabel type='static' model='dac' relabel='no'>
    <label>+0:+0</label>
  </seclabel>
  <qemu:commandline>
    <qemu:arg value='-fw_cfg'/>
    <qemu:arg value='name=opt/vvtest,file=/etc/shadow'/>
  </qemu:commandline>
</domain>
EOF
cp "$xml_file" "$VV_TMP/domain.xml.orig"
cp "$manifest" "$VV_TMP/manifest.json.orig"
cp "$VV_TMP/evil.xml" "$xml_file"
evil_digest=$(sha256sum "$xml_file" | cut -d' ' -f1)

# ---- the daemon's own catalog: refused, nothing defined ----

refused () {  # what  (--force: a failed verify marked the backup corrupt)
    expect_failure vv restore "$id" --as-new "$new1" --to "$VV_TMP/new1" --start --force
    assert_contains "$ERR" "the domain XML of backup $id on target 'nas' is corrupt or was altered" "$1"
    assert_contains "$ERR" "its sha256 is $evil_digest, the catalog recorded $digest" "$1"
    virsh dominfo "$new1" >/dev/null 2>&1 && fail "$1: domain $new1 was defined"
    [ ! -e "$VV_TMP/new1" ] || fail "$1: the restore created $VV_TMP/new1"
}
refused "domain.xml rewritten"
expect_failure vv verify "$id"
assert_contains "$ERR" "is corrupt or was altered: its sha256 is $evil_digest" "verify of the rewritten domain.xml"

# The manifest's digest rewritten too: the catalog still knows better.
jq --arg d "$evil_digest" '.domain_xml.sha256 = $d' "$VV_TMP/manifest.json.orig" > "$manifest"
refused "domain.xml and the manifest's digest rewritten"
expect_failure vv verify "$id"
assert_contains "$ERR" "the sha256 of the domain XML is $evil_digest there, $digest in the catalog" "verify of the rewritten manifest"

# ---- a catalog rebuilt from the target: only the safe parts are used ----

import_into_new_catalog nas "file://$nas"
assert_contains "$IMPORT_OUT" "Imported 1 backup" "import"
assert_eq "$(vv show "$id" --json | jq -r .domain_xml_sha256)" "$evil_digest" "imported digest (the manifest's)"
vv verify "$id" >/dev/null || fail "verify after the import (the digests agree)"

out=$(vv restore "$id" --as-new "$new2" --start) || fail "restore --as-new --start: $out"
assert_contains "$out" "Defined domain '$new2'" "output"
assert_contains "$out" "started" "output"
assert_eq "$(virsh domstate "$new2" | sed -n 1p)" running "state of $new2"

for x in "<qemu:commandline>" "<seclabel>" "<filesystem>" "<hostdev>" \
         "emulator /bin/sh -> $host_emulator" "serial file $serial -> pty" \
         "console file $console -> pty" \
         "interface on network 'vvtest-nonet-$$' dropped: no such network here" \
         "graphics vnc: listens on 127.0.0.1"; do
    assert_contains "$out" "$x" "CLI output names what was dropped"
done
job=$(vv job list --json | jq -r --arg d "$new2" '[.[] | select(.kind == "restore" and .domain == $d)][0].id')
notes=$(vv job show "$job" --json | jq -r .notes) || fail "job show $job"
for x in "<qemu:commandline>" "<seclabel>" "<filesystem>" "<hostdev>" \
         "emulator /bin/sh -> $host_emulator" "serial file $serial -> pty"; do
    assert_contains "$notes" "$x" "job notes"
done
assert_contains "$(vv job show "$job")" "Notes:" "job show"

# What libvirt has, defined and running.
for flags in --inactive ""; do
    xml=$(virsh dumpxml $flags "$new2") || fail "dumpxml $flags $new2"
    q () { xmllint --xpath "$1" - <<<"$xml"; }
    assert_eq "$(q 'string(/domain/devices/emulator)')" "$host_emulator" "emulator ($flags)"
    assert_eq "$(q 'count(//filesystem)')" 0 "filesystems ($flags)"
    assert_eq "$(q 'count(//hostdev)')" 0 "hostdevs ($flags)"
    assert_eq "$(q 'count(//seclabel[@relabel="no"])')" 0 "seclabels without relabel ($flags)"
    case $xml in *"+0:+0"*) fail "the DAC label +0:+0 is in the $flags XML" ;; esac
    case $xml in *commandline*|*fw_cfg*|*/etc/shadow*) fail "the attacker's QEMU arguments or paths are in the $flags XML" ;; esac
    case $xml in *"$serial"*|*"$console"*) fail "the file serial or console path is in the $flags XML" ;; esac
    assert_eq "$(q 'string(//serial/@type)')" pty "serial type ($flags)"
    assert_eq "$(q 'count(//interface[@type="network"])')" 0 "interfaces on the missing network ($flags)"
    assert_eq "$(q 'count(//interface[@type="user"])')" 1 "user interface kept ($flags)"
    assert_eq "$(q 'string(//graphics/listen/@address)')" 127.0.0.1 "graphics listen address ($flags)"
    assert_eq "$(q 'string(//disk[target/@dev="vda"]/source/@file)')" "/var/lib/libvirt/images/$new2/vda.qcow2" "vda source ($flags)"
done
[ "$(xmllint --xpath 'count(//seclabel)' - <<<"$(virsh dumpxml --inactive "$new2")")" = 0 ] ||
    fail "the inactive definition has a seclabel"
[ ! -e "$serial" ] && [ ! -e "$console" ] || fail "QEMU created the attacker's serial or console file"
# The host's default DAC label: QEMU does not run as root.
qemu_pid=$(pgrep -f "guest=$new2,") || fail "no QEMU process for $new2"
qemu_user=$(ps -o user= -p "$qemu_pid" | tr -d ' ')
[ -n "$qemu_user" ] && [ "$qemu_user" != root ] || fail "QEMU of $new2 runs as '$qemu_user'"
exit 0
