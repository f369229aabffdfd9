#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# An NFS server for the tests: nfs-ganesha (VFS FSAL) exporting a directory
# over NFSv4 and v3, reachable on a high loopback port, without systemd and
# without touching the system's configuration or other NFS servers.
#
# ganesha 4.3 exits when it cannot register with a portmapper ("Cannot
# register NFS V3 on TCP") and has no setting to skip that, and it binds
# the standard ports.  So it runs with its own rpcbind in a private network
# and mount namespace (its own loopback, its own /run); socat relays
# 127.0.0.1:PORT on the host to port 2049 in the namespace over a UNIX
# socket in the server directory.
#
#   nfs-server.sh start DIR EXPORT_DIR PORT [EXPORT2_DIR]
#                                             start; exits 0 when ready.
#                                             EXPORT2_DIR (if given) is a
#                                             second export, /export2 in v4
#   nfs-server.sh stop-nfsd DIR               stop ganesha only (server down)
#   nfs-server.sh start-nfsd DIR              start ganesha again
#   nfs-server.sh stop DIR                    stop everything
# URLs: nfs://127.0.0.1/export?version=4&nfsport=PORT
#       nfs://127.0.0.1/export?version=3&nfsport=PORT&mountport=PORT+1
set -e
cmd=$1 dir=$2

die () { echo "nfs-server.sh: $*" >&2; exit 1; }

pid_alive () { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }
gone () { ! kill -0 "$1" 2>/dev/null; }

# poll N CMD... : true as soon as CMD is, trying N times 0.1 s apart.
poll () {
    local n=$1 i; shift
    for (( i = 0; i < n; i++ )); do
        "$@" && return 0
        sleep 0.1
    done
    return 1
}

# wait_until N WHAT CMD... : poll, and fail here saying WHAT if CMD
# never succeeded.
wait_until () {
    local n=$1 what=$2; shift 2
    poll "$n" "$@" || die "$what (waited $(( n / 10 )) s)"
}

stop_pidfile () {
    local f=$1 p
    [ -s "$f" ] || return 0
    p=$(cat "$f")
    kill "$p" 2>/dev/null || { rm -f "$f"; return 0; }
    if ! poll 100 gone "$p"; then
        kill -9 "$p" 2>/dev/null || :
        wait_until 50 "pid $p of $f did not exit after SIGKILL" gone "$p"
    fi
    rm -f "$f"
}

in_ns () { nsenter -t "$(cat "$dir/holder.pid")" -n -m "$@"; }

# bg_ns PIDFILE OUT CMD...: CMD in the namespace in the background, its
# own pid in PIDFILE (nsenter execs CMD; a backgrounded shell function
# would be a subshell whose pid is not CMD's).
bg_ns () {
    local pidfile=$1 out=$2
    shift 2
    nsenter -t "$(cat "$dir/holder.pid")" -n -m "$@" </dev/null >>"$out" 2>&1 &
    echo $! >"$pidfile"
}

# Something answers on port 2049 in the namespace; ganesha exiting fails
# at once.
nfsd_answers () {
    in_ns bash -c 'exec 3<>/dev/tcp/127.0.0.1/2049' 2>/dev/null && return 0
    pid_alive "$dir/nfsd.pid" && return 1
    tail -20 "$dir/ganesha.log" >&2
    die "ganesha exited while starting (log: $dir/ganesha.log, $dir/ganesha.out)"
}

wait_nfsd () {
    poll 300 nfsd_answers && return 0
    tail -20 "$dir/ganesha.log" >&2
    die "ganesha did not answer on port 2049 within 30 s (log: $dir/ganesha.log)"
}

ns_port_answers () { in_ns bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null; }
port_answers () { bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null; }

# relay NAME HOST_PORT NS_PORT: 127.0.0.1:HOST_PORT here to NS_PORT in
# the namespace, through the UNIX socket DIR/NAME.sock.  With
# NFS_RELAY_LOG=FILE, the relay of the NFS port logs to FILE every piece
# it passes on ("transferred N bytes from A to B"), so a test counts the
# bytes the server sent.
relay () {
    bg_ns "$dir/socat-$1-in.pid" "$dir/socat-$1-in.out" \
        socat UNIX-LISTEN:"$dir/$1.sock",fork,unlink-early TCP:127.0.0.1:"$3"
    local log=()
    [ "$1" = nfs ] && [ -n "${NFS_RELAY_LOG:-}" ] && log=(-d -d -d -lf "$NFS_RELAY_LOG")
    socat "${log[@]}" TCP-LISTEN:"$2",bind=127.0.0.1,reuseaddr,fork UNIX-CONNECT:"$dir/$1.sock" \
        </dev/null >"$dir/socat-$1-out.out" 2>&1 &
    echo $! >"$dir/socat-$1-out.pid"
}

start_nfsd () {
    rm -f "$dir/ganesha.pid"
    bg_ns "$dir/nfsd.pid" "$dir/ganesha.out" ganesha.nfsd -F \
        -f "$dir/ganesha.conf" -L "$dir/ganesha.log" -p "$dir/ganesha.pid" -N NIV_EVENT
    wait_nfsd
}

case $cmd in
start)
    export_dir=$3 port=$4 export2=${5:-}
    [ -n "$dir" ] && [ -d "$export_dir" ] && [ -n "$port" ] ||
        die "usage: start DIR EXPORT_DIR PORT"
    command -v ganesha.nfsd >/dev/null || die "ganesha.nfsd not installed (nfs-ganesha)"
    [ -e /usr/lib/x86_64-linux-gnu/ganesha/libfsalvfs.so ] ||
        ls /usr/lib/*/ganesha/libfsalvfs.so >/dev/null 2>&1 ||
        die "the VFS FSAL is not installed (nfs-ganesha-vfs)"
    command -v socat >/dev/null || die "socat not installed"
    mkdir -p "$dir/recovery"
    cat >"$dir/ganesha.conf" <<CONF
NFS_CORE_PARAM {
    Protocols = 3, 4;
    Enable_NLM = false;
    Enable_RQUOTA = false;
    Enable_UDP = false;
    MNT_Port = 20048;
}
NFS_KRB5 { Active_krb5 = false; }
NFSV4 {
    RecoveryBackend = fs;
    RecoveryRoot = "$dir/recovery";
    Graceless = true;
    Lease_Lifetime = 10;
}
EXPORT_DEFAULTS { Access_Type = RW; Squash = No_Root_Squash; SecType = sys; }
EXPORT {
    Export_Id = 1;
    Path = "$export_dir";
    Pseudo = "/export";
    Protocols = 3, 4;
    Transports = TCP;
    FSAL { Name = VFS; }
}
LOG { Default_Log_Level = EVENT; }
CONF
    if [ -n "$export2" ]; then
        cat >>"$dir/ganesha.conf" <<CONF
EXPORT {
    Export_Id = 2;
    Path = "$export2";
    Pseudo = "/export2";
    Protocols = 3, 4;
    Transports = TCP;
    FSAL { Name = VFS; }
}
CONF
    fi
    # The namespace holder: own loopback and own /run (rpcbind's socket).
    unshare --net --mount --propagation private bash -c \
        'ip link set lo up && mount -t tmpfs tmpfs /run && mkdir -p /run/rpcbind &&
         touch "$0/ns-ready" && exec sleep infinity' "$dir" \
        </dev/null >"$dir/holder.out" 2>&1 &
    echo $! >"$dir/holder.pid"
    poll 50 test -e "$dir/ns-ready" ||
        die "cannot make the namespace within 5 s: $(cat "$dir/holder.out")"
    # rpcbind -h crashes (double free) in Debian 12's rpcbind: it listens on
    # all addresses of the namespace, which has only its own loopback.
    bg_ns "$dir/rpcbind.pid" "$dir/rpcbind.out" rpcbind -f
    poll 50 ns_port_answers 111 ||
        die "rpcbind did not answer on port 111 within 5 s: $(cat "$dir/rpcbind.out")"
    relay nfs "$port" 2049
    # NFSv3's MOUNT service (ganesha's MNT_Port) on PORT+1.
    relay mnt "$((port + 1))" 20048
    start_nfsd
    wait_until 50 "the relay on 127.0.0.1:$port does not answer" port_answers "$port"
    ;;
stop-nfsd)
    stop_pidfile "$dir/nfsd.pid"
    ;;
start-nfsd)
    start_nfsd
    ;;
stop)
    for r in nfs mnt; do
        stop_pidfile "$dir/socat-$r-out.pid"
        stop_pidfile "$dir/socat-$r-in.pid"
    done
    stop_pidfile "$dir/nfsd.pid"
    stop_pidfile "$dir/rpcbind.pid"
    stop_pidfile "$dir/holder.pid"
    ;;
*)
    die "usage: $0 start|stop|stop-nfsd|start-nfsd DIR ..."
    ;;
esac
