#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# A restore from an S3 target reads only what the point needs, counted at
# the server: radosgw's access log (one line per request, with the bytes
# it sent) after a restore of the 5th incremental of a chain whose
# incrementals each rewrite the same 8 MiB (tests/functions.sh,
# ranged_chain and ranged_restores).
source "${abs_top_srcdir:-$(dirname "$0")/..}/tests/functions.sh"

requires_cmd ceph-mon ceph-osd radosgw radosgw-admin monmaptool uuidgen ss
export VIRTVAULT_PLUGIN_PATH=${VIRTVAULT_PLUGIN_PATH:+$VIRTVAULT_PLUGIN_PATH:}$abs_top_builddir/plugins/s3/.libs

srv=$VV_TMP/s3srv
cleanup_fn "'$abs_top_srcdir/tests/s3-server.sh' stop '$srv'"
env_out=$("$abs_top_srcdir/tests/s3-server.sh" start "$srv") || fail "cannot start the S3 server: $env_out"
eval "$env_out"
rgw_log=$srv/log/client.rgw.log
[ -f "$rgw_log" ] || fail "radosgw keeps no log at $rgw_log"
bucket=vvranged
status=$(curl -s -o /dev/null -w '%{http_code}' -X PUT \
    --aws-sigv4 "aws:amz:$S3_REGION:s3" --user "$S3_ACCESS_KEY:$S3_SECRET_KEY" \
    -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" "$S3_ENDPOINT/$bucket")
assert_eq "$status" 200 "create bucket"
cred=$VV_TMP/s3.cred
printf '[default]\naws_access_key_id = %s\naws_secret_access_key = %s\n' \
    "$S3_ACCESS_KEY" "$S3_SECRET_KEY" > "$cred"
chmod 600 "$cred"

dom=vvtest-ranged-s3-$$
make_domain "$dom" 64
ref=$VV_TMP/ref-vda.raw
truncate -s 64M "$ref"
w () { guest_write "$dom" vda "$1"; ref_write "$ref" "$1"; }

start_daemon
vv target add s3 --url "s3://$bucket/ranged" --param "endpoint=$S3_ENDPOINT" \
    --param "region=$S3_REGION" --param "credentials_file=$cred" \
    --param path_style=1 >/dev/null || fail "target add s3"
TARGET=s3
ranged_chain
stored=$(vv list --json | jq '[.[] | select(.target == "s3") | .size_bytes] | add')
[ "$stored" -gt $((64 << 20)) ] || fail "the chain stores $stored bytes, less than expected"

# The bytes radosgw sent for GETs of the bucket's objects since the log
# had log_start bytes: its access lines are
#   ... "GET /BUCKET/KEY HTTP/1.1" 206 BYTES - "agent" bytes=A-B latency=...
# radosgw writes its log from a thread of its own: a request made after
# the restore, once logged, shows that the restore's lines are there.
log_start=0
reset_reads () { log_start=$(stat -c %s "$rgw_log"); mark=vv-log-marker-$RANDOM$RANDOM; }
marker_logged () { tail -c +$((log_start + 1)) "$rgw_log" | grep -qF "/$bucket/$mark "; }
bytes_read () {
    curl -s -o /dev/null --aws-sigv4 "aws:amz:$S3_REGION:s3" --user "$S3_ACCESS_KEY:$S3_SECRET_KEY" \
        -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" "$S3_ENDPOINT/$bucket/$mark"
    wait_for 30 "radosgw logging the request after the restore" marker_logged
    tail -c +$((log_start + 1)) "$rgw_log" |
        sed -n "s|.* beast: .*\"GET /$bucket/[^ ]* HTTP/1.1\" 20[06] \([0-9]*\) .*|\1|p" |
        awk '{ s += $1 } END { print s + 0 }'
}
ranged_restores "$stored" bytes_read reset_reads
exit 0
