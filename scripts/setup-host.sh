# SPDX-License-Identifier: LGPL-2.1-or-later
# Sourced by quickstart.sh and run-tests.sh: installs the Debian 12
# packages virtvault needs when any is missing, and starts virtlogd and
# libvirtd when they are not running (a fresh machine runs neither).

# What building and running virtvault needs (quickstart.sh installs
# these only).
vv_packages=(
    # build
    build-essential autoconf automake libtool pkg-config
    libvirt-dev libnbd-dev libjson-c-dev libcurl4-openssl-dev
    libsqlite3-dev libmicrohttpd-dev libxml2-dev libssl-dev libnfs-dev
    libssh-dev
    # run: libvirt + QEMU, qemu-img, nbd tools
    libvirt-daemon-system libvirt-clients qemu-system-x86 qemu-utils
    libnbd-bin
    # the demo
    curl jq libxml2-utils e2fsprogs procps sqlite3
)
# What the test suite needs on top (run-tests.sh): the real servers of
# the storage targets, the fuzzers, valgrind.  Ceph alone is some 250 MB.
vv_test_packages=(
    valgrind openssh-server openssh-sftp-server
    # the nfs target tests: nfs-ganesha with its VFS backend in a namespace
    nfs-ganesha nfs-ganesha-vfs rpcbind socat iproute2 util-linux
    # fuzzing (tests/fuzz): clang with libFuzzer and the sanitizer runtimes
    clang libclang-rt-14-dev
    # the S3 target tests: a one-node Ceph cluster with radosgw, and
    # openssl for its HTTPS certificate
    ceph-mon ceph-osd radosgw ceph-common openssl
    # bench/targets.sh: nfs-cp, the plain libnfs copy it compares against
    libnfs-utils
)

vv_say () { printf '==> %s\n' "$*"; }

# vv_install_packages [PACKAGE...] : installs those of vv_packages and
# of the arguments that are missing.
vv_install_packages () {
    local missing=() p
    for p in "${vv_packages[@]}" "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
            missing+=("$p")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        vv_say "installing ${missing[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    fi
}

vv_start_libvirt () {
    # Debian's udev rule gives /dev/kvm to group kvm; where it is root-only,
    # libvirt finds KVM usable when probing but not when starting a domain,
    # and then re-probes QEMU (about 40 s) before every domain start.
    if [ -c /dev/kvm ] && [ "$(stat -c %G /dev/kvm)" != kvm ]; then
        chgrp kvm /dev/kvm && chmod 0660 /dev/kvm
    fi
    pgrep -x virtlogd >/dev/null || virtlogd -d
    if ! pgrep -x libvirtd >/dev/null; then
        libvirtd -d
    fi
    local i
    for i in $(seq 1 50); do
        virsh -c qemu:///system version >/dev/null 2>&1 && return 0
        sleep 0.2
    done
    echo "libvirtd does not answer on qemu:///system" >&2
    return 1
}

vv_build () {  # vv_build BUILDDIR [configure args...]
    local dir=$1; shift
    [ -x configure ] || autoreconf -fi >/dev/null
    mkdir -p "$dir"
    (cd "$dir" && { [ -f Makefile ] || ../configure -q "$@"; } && make -j"$(nproc)" >/dev/null)
}
