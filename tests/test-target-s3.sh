#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The S3 target against a real S3 server (Ceph RGW on loopback, checking
# SigV4 signatures): target add with a credentials file and 'target test';
# a full and two incrementals of a running domain (multipart uploads with
# 5 MiB parts) restore bit for bit; wrong credentials fail with a clear
# 403 that never shows the secret; a credentials file readable by others
# is refused; the server stopped in the middle of an upload fails the
# backup cleanly, and once it is back the next backup succeeds and no
# object or unfinished multipart upload of the failed one remains; a
# fresh daemon imports the backups; over HTTPS (the server's self-signed
# certificate) a backup and restore work with ca_file=, and without it
# the target is refused with the certificate error; a full user quota
# fails a backup as "no space" (QuotaExceeded).
source "${abs_top_srcdir:-$(dirname "$0")/..}/tests/functions.sh"

requires_cmd ceph-mon ceph-osd radosgw radosgw-admin monmaptool uuidgen ss openssl
export VIRTVAULT_PLUGIN_PATH=${VIRTVAULT_PLUGIN_PATH:+$VIRTVAULT_PLUGIN_PATH:}$abs_top_builddir/plugins/s3/.libs

# ---- the server ----
srv=$VV_TMP/s3srv
cleanup_fn "'$abs_top_srcdir/tests/s3-server.sh' stop '$srv'"
env_out=$(S3_SERVER_TLS=1 "$abs_top_srcdir/tests/s3-server.sh" start "$srv") || fail "cannot start the S3 server: $env_out"
eval "$env_out"
bucket=vvtest
# s3 METHOD PATH [curl args] : a signed request; body in $VV_TMP/s3body;
# prints the HTTP status.  (The test's own curl may take the keys in argv.)
s3 () {
    local m=$1 p=$2; shift 2
    curl -s -o "$VV_TMP/s3body" -w '%{http_code}' -X "$m" \
        --aws-sigv4 "aws:amz:$S3_REGION:s3" --user "$S3_ACCESS_KEY:$S3_SECRET_KEY" \
        -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" "$@" "$S3_ENDPOINT$p"
}
assert_eq "$(s3 PUT /$bucket)" 200 "create bucket"
# keys KEY_PREFIX : the keys stored under that prefix, one a line.
keys () {
    # canonical query: '/' in a value is %2F (curl signs it verbatim)
    assert_eq "$(s3 GET "/$bucket?list-type=2&max-keys=1000&prefix=${1//\//%2F}")" 200 "ListObjectsV2"
    xmllint --xpath '//*[local-name()="Key"]/text()' "$VV_TMP/s3body" 2>/dev/null | tr ' ' '\n' | grep . || true
}
# uploads : the number of unfinished multipart uploads in the bucket.
uploads () {
    assert_eq "$(s3 GET "/$bucket?uploads=")" 200 "ListMultipartUploads"
    xmllint --xpath 'count(//*[local-name()="Upload"])' "$VV_TMP/s3body"
}

cred=$VV_TMP/s3.cred
printf '[default]\naws_access_key_id = %s\naws_secret_access_key = %s\n' \
    "$S3_ACCESS_KEY" "$S3_SECRET_KEY" > "$cred"
chmod 600 "$cred"
badcred=$VV_TMP/s3-bad.cred
printf '[other]\naws_access_key_id=%s\naws_secret_access_key=%s\n' \
    "$S3_ACCESS_KEY" "wrongsecret0123456789wrongsecret01234567" > "$badcred"
chmod 600 "$badcred"

dom=vvtest-s3-$$
make_domain "$dom" 64
ref=$VV_TMP/ref-vda.raw
truncate -s 64M "$ref"
w () { guest_write "$dom" vda "$1"; ref_write "$ref" "$1"; }
head -c 12M /dev/urandom > "$VV_TMP/rand1"
qemu-io -f raw "$ref" -c "write -s $VV_TMP/rand1 8M 12M" >/dev/null || fail "ref write"
guest_write "$dom" vda "write -s $VV_TMP/rand1 8M 12M"
w "write -P 0x11 0 1M"

start_daemon
url="s3://$bucket/vv"
params=(--param "endpoint=$S3_ENDPOINT" --param "credentials_file=$cred"
        --param part_size_mib=5 --param parts_in_flight=2 --param retries=4)
vv target add s3 --url "$url" "${params[@]}" >/dev/null || fail "target add s3"
out=$(vv target test s3 2>&1) || fail "target test s3: $out"
k=$(keys vv/.virtvault-test/) || exit 1
assert_eq "$k" "" "probe objects left by target test"

# ---- the version 2 callbacks, from a program that loads the plugin ----
"$abs_top_builddir/tests/s3-plugin-driver" "$abs_top_builddir/plugins/s3/.libs/virtvault-s3-plugin.so" \
    "s3://$bucket/drv-test" "$S3_ENDPOINT" "$cred" || fail "s3-plugin-driver"
assert_eq "$(uploads)" 0 "unfinished uploads after s3-plugin-driver"
k=$(keys drv-test/) || exit 1
assert_eq "$k" "" "objects left by s3-plugin-driver"

# ---- bad credentials ----
# target add checks the target: a wrong secret is refused at once ...
out=$(vv target add bad --url "$url" --param "endpoint=$S3_ENDPOINT" \
    --param "credentials_file=$badcred" --param profile=other --param retries=1 2>&1) &&
    fail "target add with a wrong secret passed"
assert_contains "$out" "HTTP 403" "target add with a wrong secret"
case "$out" in *wrongsecret*) fail "the secret key appears in the message: $out" ;; esac
assert_eq "$(vv target list --json | jq '[.[] | select(.name=="bad")] | length')" 0 "refused target stored"
# ... and stored with --no-check, target test says why.
vv target add bad --url "$url" --param "endpoint=$S3_ENDPOINT" --no-check \
    --param "credentials_file=$badcred" --param profile=other --param retries=1 >/dev/null ||
    fail "target add bad --no-check"
out=$(vv target test bad 2>&1) && fail "target test with a wrong secret passed"
assert_contains "$out" "HTTP 403" "wrong secret"
assert_contains "$out" "SignatureDoesNotMatch" "wrong secret"
case "$out" in *wrongsecret*) fail "the secret key appears in the message: $out" ;; esac
grep -q wrongsecret "$VV_STATE/daemon.log" && fail "the secret key appears in the daemon log"
chmod 644 "$badcred"
out=$(vv target add bad2 --url "$url" --param "endpoint=$S3_ENDPOINT" \
    --param "credentials_file=$badcred" 2>&1) && fail "a world-readable credentials file was accepted"
assert_contains "$out" "owned by root" "credentials file mode"
ln -s "$cred" "$VV_TMP/s3-link.cred"
out=$(vv target add bad3 --url "$url" --param "endpoint=$S3_ENDPOINT" \
    --param "credentials_file=$VV_TMP/s3-link.cred" 2>&1) && fail "a symlinked credentials file was accepted"
assert_contains "$out" "symbolic link" "credentials file symlink"

# ---- a full and two incrementals ----
ids=()
backup () {
    local type=$1 b id
    b=$(vv backup "$dom" --target s3 --wait --json) || fail "backup ${#ids[@]}: $b"
    id=$(jq -r .id <<<"$b")
    assert_eq "$(jq -r .status <<<"$b")" completed "status of backup $id"
    assert_eq "$(jq -r .type <<<"$b")" "$type" "type of backup $id"
    cp --sparse=always "$ref" "$VV_TMP/ref-$id.raw"
    ids+=("$id")
}
t0=$(date +%s.%N)
backup full
t1=$(date +%s.%N)
echo "full backup of 13 MiB to S3: $(awk -v a="$t1" -v b="$t0" 'BEGIN{printf "%.2f", a-b}') s"
w "write -P 0x21 2M 1M"
backup incremental
w "write -P 0x31 30M 6M"
backup incremental
assert_eq "$(uploads)" 0 "unfinished uploads after three backups"
for id in "${ids[@]}"; do
    rm -rf "$VV_TMP/r"
    vv restore "$id" --to "$VV_TMP/r" --format raw >/dev/null || fail "restore $id"
    "$QEMU_IMG" compare -q -f raw -F raw "$VV_TMP/r/vda.raw" "$VV_TMP/ref-$id.raw" ||
        fail "restore of $id differs from the disk at that point"
done

# ---- the server stops in the middle of an upload ----
head -c 40M /dev/urandom > "$VV_TMP/rand2"
qemu-io -f raw "$ref" -c "write -s $VV_TMP/rand2 20M 40M" >/dev/null || fail "ref write 2"
guest_write "$dom" vda "write -s $VV_TMP/rand2 20M 40M"
out=$(vv backup "$dom" --target s3 --json) || fail "backup start: $out"
job=$(jq -r .job.id <<<"$out")
failed_id=$(jq -r .backup.id <<<"$out")
# As soon as the multipart upload exists (after the first 5 MiB), the
# server freezes (SIGSTOP: the request in flight hangs), then dies.
has_upload () { [ "$(uploads)" -ge 1 ]; }
wait_for 60 "a multipart upload of backup $failed_id" has_upload
kill -STOP "$(cat "$srv/run/client.rgw.pid")"
st=$(vv job show "$job" --json | jq -r .status)
[ "$st" = running ] || fail "backup $failed_id ended ($st) before the server could be stopped; make it write more"
"$abs_top_srcdir/tests/s3-server.sh" stop-rgw "$srv" || fail "stop radosgw"
j=$(wait_job "$job" completed failed cancelled)
assert_eq "$(jq -r .status <<<"$j")" failed "backup with the server gone"
err=$(jq -r .error <<<"$j")
echo "backup with the server gone: $err"
assert_contains "$err" "s3://$bucket/vv/" "error names the object"
"$abs_top_srcdir/tests/s3-server.sh" start-rgw "$srv" || fail "restart radosgw"
backup incremental
assert_eq "$(uploads)" 0 "unfinished uploads after the failed backup's cleanup"
k=$(keys vv/) || exit 1
[ -n "$k" ] || fail "no objects listed under vv/"
assert_eq "$(grep -c "$failed_id" <<<"$k")" 0 "objects of the failed backup"
rm -rf "$VV_TMP/r"
vv restore "${ids[-1]}" --to "$VV_TMP/r" --format raw >/dev/null || fail "restore ${ids[-1]}"
"$QEMU_IMG" compare -q -f raw -F raw "$VV_TMP/r/vda.raw" "$VV_TMP/ref-${ids[-1]}.raw" ||
    fail "restore of ${ids[-1]} (after the failed backup) differs"

# ---- a fresh daemon imports the backups ----
before=$(vv list --json | jq -c '[.[] | select(.status == "completed") | .id] | sort')
stop_daemon
VV_STATE=$VV_TMP/state2
start_daemon
vv target add s3 --url "$url" "${params[@]}" >/dev/null || fail "target add s3 (new catalog)"
out=$(vv target import s3) || fail "target import: $out"
after=$(vv list --json | jq -c '[.[] | select(.status == "completed") | .id] | sort')
assert_eq "$after" "$before" "backups imported into a new catalog"

# ---- HTTPS: the server's certificate is self-signed ----
tls=(--param "endpoint=$S3_TLS_ENDPOINT" --param "credentials_file=$cred"
     --param part_size_mib=5 --param retries=2)
vv target add s3tls --url "s3://$bucket/tls" "${tls[@]}" --param "ca_file=$S3_CA_FILE" >/dev/null ||
    fail "target add over HTTPS with ca_file"
b=$(vv backup "$dom" --target s3tls --wait --json) || fail "backup over HTTPS: $b"
assert_eq "$(jq -r .status <<<"$b")" completed "backup over HTTPS"
k=$(keys tls/) || exit 1
assert_contains "$k" "$(jq -r .id <<<"$b")" "objects stored over HTTPS"
rm -rf "$VV_TMP/r"
vv restore "$(jq -r .id <<<"$b")" --to "$VV_TMP/r" --format raw >/dev/null || fail "restore over HTTPS"
"$QEMU_IMG" compare -q -f raw -F raw "$VV_TMP/r/vda.raw" "$ref" || fail "restore over HTTPS differs"
# Without ca_file the system CA store is used, which does not know it.
out=$(vv target add s3tls-noca --url "s3://$bucket/tls" "${tls[@]}" 2>&1) &&
    fail "target add over HTTPS without ca_file passed: $out"
echo "HTTPS without ca_file: $out"
assert_contains "$out" "not adding target 's3tls-noca'" "HTTPS without ca_file names the target"
assert_contains "$out" "SSL certificate problem: self-signed certificate" "HTTPS without ca_file"
assert_contains "$out" "ca_file=PATH" "HTTPS without ca_file says what to do"

# ---- out of space: a user quota ----
radosgw-admin -c "$srv/ceph.conf" -n client.rgw quota set --quota-scope=user \
    --uid=tester --max-size=1048576 >/dev/null 2>&1 || fail "quota set"
radosgw-admin -c "$srv/ceph.conf" -n client.rgw quota enable --quota-scope=user \
    --uid=tester >/dev/null 2>&1 || fail "quota enable"
"$abs_top_srcdir/tests/s3-server.sh" stop-rgw "$srv" && "$abs_top_srcdir/tests/s3-server.sh" start-rgw "$srv" ||
    fail "restart radosgw with the quota"
w "write -P 0x41 0 8M"
b=$(vv backup "$dom" --target s3 --wait --json 2>&1) && fail "backup over the quota passed: $b"
echo "backup over the quota: $b"
assert_contains "$b" "HTTP 403 QuotaExceeded; the bucket or user quota is full" "backup over the quota"
assert_eq "$(uploads)" 0 "unfinished uploads after the quota failure"
echo "PASS: $test_name"
