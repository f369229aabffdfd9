#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# A restore from an NFS target reads only what the point needs, counted
# in front of the server: the relay that brings nfs-ganesha's port to
# loopback (tests/nfs-server.sh) logs every piece it passes on, so the
# bytes of a restore of the 5th incremental are the replies' bytes (data
# and a little RPC framing) of a chain whose incrementals each rewrite
# the same 8 MiB (tests/functions.sh, ranged_chain and ranged_restores).
source "${abs_top_srcdir:-$(dirname "$0")/..}/tests/functions.sh"

requires_cmd ganesha.nfsd rpcbind socat nsenter unshare
server=$abs_top_srcdir/tests/nfs-server.sh

port=$(free_port_pair) || fail "no free port pair for the NFS server"
export_dir=$VV_TMP/nfs-export srv=$VV_TMP/nfs-server
relay_log=$VV_TMP/nfs-relay.log
mkdir -p "$export_dir" "$srv"
cleanup_fn "'$server' stop '$srv'"
NFS_RELAY_LOG=$relay_log "$server" start "$srv" "$export_dir" "$port" ||
    fail "the NFS server did not start"

dom=vvtest-ranged-nfs-$$
make_domain "$dom" 64
ref=$VV_TMP/ref-vda.raw
truncate -s 64M "$ref"
w () { guest_write "$dom" vda "$1"; ref_write "$ref" "$1"; }

start_daemon
vv target add nas --url "nfs://127.0.0.1$export_dir?nfsport=$port&mountport=$((port + 1))&timeout=5" \
    >/dev/null || fail "target add nas"
TARGET=nas
ranged_chain
stored=$(find "$export_dir" -type f -name '*.qcow2' -printf '%s\n' | awk '{ s += $1 } END { print s }')

# Both directions are counted: the restore only reads, so what goes to
# the server is its small requests.
reset_reads () { : > "$relay_log"; }
bytes_read () {
    sed -n 's/.* transferred \([0-9]*\) bytes from .*/\1/p' "$relay_log" |
        awk '{ s += $1 } END { print s + 0 }'
}
ranged_restores "$stored" bytes_read reset_reads
exit 0
