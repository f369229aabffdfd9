#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# A throw-away S3 server for the tests: one Ceph monitor, one OSD
# (memstore: data in RAM) and radosgw on 127.0.0.1, without systemd, all
# state in one directory.  It checks SigV4 signatures as AWS does.
#
# memstore holds about twice the stored bytes in the OSD's memory and
# frees deleted data only after RGW's garbage collection (hours), so for
# gigabytes (bench/targets.sh) RGW_TEST_OBJECTSTORE=bluestore keeps the
# data in a sparse file in DIR instead (about 5 s more to start).
# RGW_TEST_STORE_BYTES is the store's size (default 2 GiB).
#
#   eval "$(tests/s3-server.sh start DIR)"   prints S3_ENDPOINT S3_REGION
#                                            S3_ACCESS_KEY S3_SECRET_KEY S3_PORT
#   S3_SERVER_TLS=1 tests/s3-server.sh start DIR
#                                            also serves HTTPS with a
#                                            self-signed certificate made in
#                                            DIR/tls: prints S3_TLS_ENDPOINT
#                                            (https://127.0.0.1:PORT) and
#                                            S3_CA_FILE (that certificate)
#   tests/s3-server.sh stop-rgw DIR          stops radosgw only (the S3 side)
#   tests/s3-server.sh start-rgw DIR         starts it again
#   tests/s3-server.sh stop DIR              stops everything, removes DIR
#
# Ports: a base below the ephemeral range (32768-60999), picked from the
# caller's pid so parallel runs do not collide, moved on if one is taken.
# Needs ceph-mon ceph-osd radosgw ceph-common, and openssl for HTTPS
# (scripts/setup-host.sh).
set -euo pipefail

cmd=${1:?usage: s3-server.sh start|stop|stop-rgw|start-rgw DIR}
D=${2:?state directory}
STORE=${RGW_TEST_OBJECTSTORE:-memstore}
STORE_BYTES=${RGW_TEST_STORE_BYTES:-2147483648}
AK=AKIDVVTEST0000000000
SK=vvtestsecret000000000000000000000000000000

die () {
    echo "s3-server.sh: $*" >&2
    for f in "$D"/log/*.log; do
        [ -s "$f" ] && { echo "---- tail $f" >&2; tail -n 15 "$f" >&2; }
    done
    exit 1
}

ourpid () {   # the pid in run/$1.pid if it is still a daemon of this dir
    local f=$D/run/$1.pid pid
    [ -f "$f" ] || return 0
    pid=$(cat "$f" 2>/dev/null)
    [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] &&
        tr '\0' ' ' < "/proc/$pid/cmdline" | grep -qF -- "-c $D/ceph.conf" &&
        echo "$pid"
    return 0
}

running () {
    local st
    st=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
    [ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}

# The data is thrown away: SIGKILL, no clean shutdown.
kill_daemons () {
    local pids="" n pid i
    for n in "$@"; do pids+=" $(ourpid "$n")"; done
    for pid in $pids; do kill -KILL "$pid" 2>/dev/null || true; done
    for pid in $pids; do
        for i in $(seq 1 200); do running "$pid" || break; sleep 0.05; done
        ! running "$pid" || die "pid $pid did not exit"
    done
}

# s3_answers [CURL ARGS] URL : the HTTP code of a signed bucket listing.
s3_answers () {
    curl -s -o /dev/null -w '%{http_code}' --aws-sigv4 "aws:amz:us-east-1:s3" \
        --user "$AK:$SK" -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" \
        "$@" 2>/dev/null || true
}

start_rgw () {
    . "$D/ports"
    radosgw -c "$D/ceph.conf" -n client.rgw 2>>"$D/log/setup.log" || die "radosgw start"
    local pid code i
    # radosgw forks into the background and writes its pid file after
    for i in $(seq 1 100); do
        [ -s "$D/run/client.rgw.pid" ] && break
        [ "$i" = 100 ] && die "radosgw wrote no pid file within 10 s"
        sleep 0.1
    done
    pid=$(cat "$D/run/client.rgw.pid")
    for i in $(seq 1 300); do
        code=$(s3_answers "http://127.0.0.1:$RGW_PORT/")
        # the HTTPS side must answer too, with the certificate checked
        [ "$code" = 200 ] && [ -n "${RGW_TLS_PORT:-}" ] &&
            code=$(s3_answers --cacert "$D/tls/cert.pem" "https://127.0.0.1:$RGW_TLS_PORT/")
        [ "$code" = 200 ] && return 0
        kill -0 "$pid" 2>/dev/null || die "radosgw exited"
        sleep 0.2
    done
    die "S3 endpoint did not answer within 60 s (last HTTP code $code)"
}

case $cmd in
stop)
    [ -f "$D/ceph.conf" ] || exit 0
    D=$(cd "$D" && pwd)
    kill_daemons client.rgw osd.0 mon.a
    rm -rf -- "$D"
    exit 0 ;;
stop-rgw)
    D=$(cd "$D" && pwd)
    kill_daemons client.rgw
    exit 0 ;;
start-rgw)
    D=$(cd "$D" && pwd)
    start_rgw
    exit 0 ;;
start) ;;
*) die "unknown command $cmd" ;;
esac
case $STORE in memstore|bluestore) ;; *) die "RGW_TEST_OBJECTSTORE must be memstore or bluestore, not '$STORE'" ;; esac
[[ $STORE_BYTES =~ ^[0-9]{1,15}$ ]] || die "RGW_TEST_STORE_BYTES must be a number of bytes, not '$STORE_BYTES'"

mkdir -p "$D"/{run,log,mon.a,osd.0}
D=$(cd "$D" && pwd)
export CEPH_CONF=$D/ceph.conf

# A free base port: mon BASE, OSD BASE+10..BASE+40, rgw BASE+80 (and
# BASE+81 for HTTPS).
base=$(( 20000 + ($$ % 120) * 100 ))
for try in 1 2 3 4 5 6 7 8 9 10; do
    busy=
    for p in $base $((base + 80)) $((base + 81)) $(seq $((base + 10)) $((base + 40))); do
        if ss -Hltn "sport = :$p" | grep -q .; then busy=1; break; fi
    done
    [ -z "$busy" ] && break
    base=$(( 20000 + ((base - 20000) / 100 + 7) % 120 * 100 ))
done
[ -z "$busy" ] || die "no free port range found"
MON_PORT=$base
RGW_PORT=$((base + 80))
echo "RGW_PORT=$RGW_PORT" > "$D/ports"
frontends="beast endpoint=127.0.0.1:$RGW_PORT"
if [ "${S3_SERVER_TLS:-0}" = 1 ]; then
    command -v openssl >/dev/null || die "openssl is needed for S3_SERVER_TLS=1"
    RGW_TLS_PORT=$((base + 81))
    echo "RGW_TLS_PORT=$RGW_TLS_PORT" >> "$D/ports"
    mkdir -p "$D/tls"
    # Self-signed for the loopback address: it is its own CA (ca_file=).
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
        -keyout "$D/tls/key.pem" -out "$D/tls/cert.pem" -days 2 \
        -subj "/CN=virtvault test S3 server" -addext "subjectAltName=IP:127.0.0.1" \
        2>>"$D/log/setup.log" || die "openssl req (test certificate)"
    frontends+=" ssl_endpoint=127.0.0.1:$RGW_TLS_PORT"
    frontends+=" ssl_certificate=$D/tls/cert.pem ssl_private_key=$D/tls/key.pem"
fi
FSID=$(uuidgen)

cat > "$D/ceph.conf" <<CONF
[global]
fsid = $FSID
mon host = [v2:127.0.0.1:$MON_PORT]
mon initial members = a
auth cluster required = none
auth service required = none
auth client required = none
auth supported = none
keyring = $D/keyring
ms bind msgr1 = false
ms bind ipv4 = true
ms bind ipv6 = false
run dir = $D/run
admin socket = $D/run/\$name.asok
pid file = $D/run/\$name.pid
log file = $D/log/\$name.log
log to stderr = false
err to stderr = true
mon cluster log file = $D/log/cluster.log
crash dir = $D/crash
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
mon allow pool size one = true
mon allow pool delete = true
mon max pg per osd = 1000
mon warn on pool no redundancy = false
osd crush chooseleaf type = 0
rgw rados pool pg num min = 8
paxos propose interval = 0.05
paxos min wait = 0.01

[mon]
mon data = $D/mon.a
mon data avail warn = 1
mon data avail crit = 0

[osd]
osd data = $D/osd.\$id
osd objectstore = $STORE
osd crush update on start = true
public addr = 127.0.0.1
cluster addr = 127.0.0.1
ms bind port min = $((base + 10))
ms bind port max = $((base + 40))
memstore device bytes = $STORE_BYTES
bluestore block create = true
bluestore block size = $STORE_BYTES
bluestore fsck on mount = false
bluestore block db create = false
bluestore block wal create = false
osd memory target = 939524096
osd op num shards = 1
osd op num threads per shard = 2

[client.rgw]
rgw frontends = $frontends
rgw thread pool size = 32
rgw dns name = localhost
rgw enable usage log = false
rgw dynamic resharding = false
client mount timeout = 30
ms mon client mode = crc secure
CONF
: > "$D/keyring"

monmaptool --create --clobber --fsid "$FSID" --addv a "[v2:127.0.0.1:$MON_PORT]" \
    "$D/monmap" >/dev/null 2>>"$D/log/setup.log" || die monmaptool
ceph-mon -c "$D/ceph.conf" -i a --mkfs --monmap "$D/monmap" 2>>"$D/log/setup.log" || die "ceph-mon --mkfs"
ceph-mon -c "$D/ceph.conf" -i a 2>>"$D/log/setup.log" || die "ceph-mon start"
for i in $(seq 1 100); do
    ceph -c "$D/ceph.conf" --connect-timeout 3 mon stat >/dev/null 2>&1 && break
    [ "$i" = 100 ] && die "the monitor did not answer"
    sleep 0.2
done

OSD_UUID=$(uuidgen)
OSD_ID=$(ceph -c "$D/ceph.conf" osd new "$OSD_UUID" 2>>"$D/log/setup.log") || die "osd new"
[ "$OSD_ID" = 0 ] || die "unexpected osd id $OSD_ID"
ceph-osd -c "$D/ceph.conf" -i 0 --mkfs --osd-uuid "$OSD_UUID" >>"$D/log/setup.log" 2>&1 || die "ceph-osd --mkfs"
ceph-osd -c "$D/ceph.conf" -i 0 2>>"$D/log/setup.log" || die "ceph-osd start"
for i in $(seq 1 150); do
    ceph -c "$D/ceph.conf" osd stat -f json 2>/dev/null | grep -q '"num_up_osds":1' && break
    [ "$i" = 150 ] && die "the OSD did not come up"
    sleep 0.2
done

radosgw-admin -c "$D/ceph.conf" -n client.rgw user create --uid=tester \
    --display-name=tester --access-key="$AK" --secret-key="$SK" \
    >"$D/user.json" 2>>"$D/log/setup.log" || die "radosgw-admin user create"
start_rgw

cat <<ENV
S3_DIR=$D
S3_PORT=$RGW_PORT
S3_ENDPOINT=http://127.0.0.1:$RGW_PORT
S3_REGION=us-east-1
S3_ACCESS_KEY=$AK
S3_SECRET_KEY=$SK
ENV
if [ -n "${RGW_TLS_PORT:-}" ]; then
    echo "S3_TLS_ENDPOINT=https://127.0.0.1:$RGW_TLS_PORT"
    echo "S3_CA_FILE=$D/tls/cert.pem"
fi
