#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# A lost catalog is rebuilt from a target: a full and two incrementals
# are stored on a file target; a daemon with a new, empty state directory
# imports them with 'target import' and lists the same backups, chain and
# positions; the newest restores bit for bit; a second import changes
# nothing; broken and orphaned manifests are reported as skipped with the
# reason and change nothing; an imported backup belongs to its instance's
# owner in the catalog, else to the administrators, never to the
# owner_uid of its manifest, and a manifest naming another checkpoint
# than its own (a live one of another domain) is skipped; incomplete
# directories are left alone; the
# next backup continues the chain and restores bit for bit; a non-root
# caller gets 403.
source "${abs_top_srcdir:-$(dirname "$0")/..}/tests/functions.sh"

requires_cmd setpriv

dom=vvtest-imp-$$
make_domain "$dom" 64
ref=$VV_TMP/ref-vda.raw
truncate -s 64M "$ref"
w () { guest_write "$dom" vda "$1"; ref_write "$ref" "$1"; }

# Outside the first daemon's state: it outlives that daemon.
nas=$VV_TMP/nas
mkdir -p "$nas"

start_daemon
vv target add nas --url "file://$nas" >/dev/null || fail "target add nas"

ids=()
w "write -P 0x11 0 2M"
w "write -P 0x12 40M 1M"
backup_point full
w "write -P 0x21 1M 1M"
backup_point incremental
w "write -P 0x31 10M 512k"
w "write -z 40M 64k"
backup_point incremental
uuid=$(jq -r .domain_uuid <<<"$LAST")
chain=$(jq -r .chain_id <<<"$LAST")
# target list counts the completed backups on a target and their bytes,
# the sum of what the objects of the images take there.
tj=$(vv target list --json | jq '.[] | select(.name=="nas")')
assert_eq "$(jq -r .backups <<<"$tj")" 3 "backups on nas"
assert_eq "$(jq -r .stored_bytes <<<"$tj")" \
    "$(find "$nas/$uuid" -name '*.qcow2' -printf '%s\n' | awk '{s+=$1} END {print s}')" \
    "bytes stored on nas"
assert_contains "$(vv target list | grep '^nas ')" " 3 " "backups column of the target table"
assert_eq "$(jq -r .chain_pos <<<"$LAST")" 2 "position of the second incremental"

# What must come back (the checkpoints of older points were pruned in the
# old catalog only, and completed_at is set again when the catalog row
# completes: not compared).
shape='map({id, domain, domain_uuid, type, status, chain_id, chain_pos,
            parent_id, created_at, size_bytes, reason, notes, owner_uid,
            disks: [.disks[] | {name, virtual_size, stored_bytes, sha256,
                                format, backing}]})'
before=$(vv list --json | jq -c "$shape") || fail "list before"
assert_eq "$(jq length <<<"$before")" 3 "backups before the catalog is lost"

# An interrupted attempt leaves a directory without a manifest.
partial=$nas/$uuid/$chain/bk-0000000000d1
mkdir -p "$partial"
echo "half an image" > "$partial/vda.qcow2"

# ---- the catalog is lost: a new daemon with an empty state directory ----
stop_daemon
VV_STATE=$VV_TMP/state2
start_daemon
assert_eq "$(vv list --json | jq length)" 0 "backups in the new catalog"
vv target add old --url "file://$nas" >/dev/null || fail "target add old"

out=$(vv target import old) || fail "target import: $out"
assert_eq "$out" "Imported 3 backups from target 'old' (0 already known)" "first import"
after=$(vv list --json | jq -c "$shape") || fail "list after"
assert_eq "$after" "$before" "the backups after the import"
assert_eq "$(vv list --json | jq -r '[.[].target] | unique | join(",")')" old "target of the imported backups"
chains=$(vv chain list --json) || fail "chain list"
assert_eq "$(jq -r '.[0].id' <<<"$chains")" "$chain" "imported chain"
assert_eq "$(jq -r '.[0].full_id' <<<"$chains")" "${ids[0]}" "full of the imported chain"
assert_eq "$(jq -r '.[0].length' <<<"$chains")" 2 "length of the imported chain"
assert_eq "$(vv instance list --json | jq -r '.[0].uuid')" "$uuid" "imported instance"
[ -f "$partial/vda.qcow2" ] || fail "the incomplete attempt was touched"
# The block digests and metadata length come from the manifests, the
# sidecar named under the backup's prefix; the owner's name and host id
# are not kept; verify proves the sidecars agree with the images.
for i in 0 1 2; do
    m=$nas/$uuid/$chain/${ids[$i]}/manifest.json
    assert_eq "$(sqlite3 "$VV_STATE/catalog.db" "SELECT blocks_object || ' ' || blocks_sha256 || ' ' || block_size || ' ' || metadata_bytes FROM backup_disks WHERE backup_id = '${ids[$i]}'")" \
        "$uuid/$chain/${ids[$i]}/vda.blocks $(jq -r '.disks[0].blocks.sha256 + " " + (.disks[0].blocks.block_size | tostring) + " " + (.disks[0].metadata_bytes | tostring)' "$m")" \
        "block digests of imported ${ids[$i]}"
    jq -e '.owner_name != null and .host_id != null' "$m" >/dev/null || fail "manifest of ${ids[$i]} lacks owner_name or host_id"
    vv verify "${ids[$i]}" >/dev/null || fail "verify of imported ${ids[$i]}"
done

# The newest point restores bit for bit.
vv restore "${ids[2]}" --to "$VV_TMP/r2" --format raw >/dev/null || fail "restore ${ids[2]}"
cmp "$VV_TMP/r2/vda.raw" "$VV_TMP/ref-${ids[2]}.raw" || fail "restore of ${ids[2]} differs from the disk at that point"

# Again: nothing changes.
j=$(vv target import old --json) || fail "second import: $j"
assert_eq "$(jq -c '{imported, known, skipped, skipped_total}' <<<"$j")" \
    '{"imported":0,"known":3,"skipped":[],"skipped_total":0}' "second import"
assert_eq "$(vv list --json | jq -c "$shape")" "$before" "the backups after a second import"

# ---- manifests that cannot be imported ----
good=$nas/$uuid/$chain/${ids[2]}/manifest.json
# What a manifest copied under another id changes to stay valid: its own
# checkpoint, and backing files in its parent.
as_own='.checkpoint = "virtvault-" + .id | .parent_id as $p
        | .disks |= map(if .backing then .backing = "../\($p)/\(.object)" else . end)'
# Not JSON at all.
mkdir -p "$nas/$uuid/$chain/bk-0000000000e1"
printf '{"format_version": 1, "id": ' > "$nas/$uuid/$chain/bk-0000000000e1/manifest.json"
# Valid, but its parent is nowhere.
mkdir -p "$nas/$uuid/$chain/bk-0000000000e2"
jq '.id = "bk-0000000000e2" | .parent_id = "bk-0000000000ee" | '"$as_own" "$good" \
    > "$nas/$uuid/$chain/bk-0000000000e2/manifest.json" || fail "jq"
# A copy of another backup's manifest: its ids disagree with its path.
mkdir -p "$nas/$uuid/$chain/bk-0000000000e3"
cp "$good" "$nas/$uuid/$chain/bk-0000000000e3/manifest.json"
# An incremental on top of the orphan: skipped because its parent is.
mkdir -p "$nas/$uuid/$chain/bk-0000000000e4"
jq '.id = "bk-0000000000e4" | .parent_id = "bk-0000000000e2" | .created_at = "2099-01-01T00:00:00Z" | '"$as_own" "$good" \
    > "$nas/$uuid/$chain/bk-0000000000e4/manifest.json" || fail "jq"
files_before=$(target_files "$nas")

j=$(vv target import old --json) || fail "import with bad manifests: $j"
assert_eq "$(jq -c '{imported, known, skipped_total}' <<<"$j")" \
    '{"imported":0,"known":3,"skipped_total":4}' "import with bad manifests"
reason () { jq -r --arg o "$uuid/$chain/$1/manifest.json" '.skipped[] | select(.object == $o) | .reason' <<<"$j"; }
assert_contains "$(reason bk-0000000000e1)" "$uuid/$chain/bk-0000000000e1/manifest.json" "reason of the broken manifest"
assert_contains "$(reason bk-0000000000e2)" "its parent bk-0000000000ee is neither in the catalog nor on target 'old'" "reason of the orphan"
assert_contains "$(reason bk-0000000000e3)" "describes backup ${ids[2]} of chain $chain" "reason of the misplaced manifest"
assert_contains "$(reason bk-0000000000e4)" "its parent bk-0000000000e2 was skipped" "reason of the orphan's child"
assert_eq "$(vv list --json | jq -c "$shape")" "$before" "the backups after skipped manifests"
assert_eq "$(target_files "$nas")" "$files_before" "objects on the target after the import"

out=$(vv target import old) || fail "human import output: $out"
assert_contains "$out" "Imported 0 backups from target 'old' (3 already known); skipped:" "human output"
assert_contains "$out" "  $uuid/$chain/bk-0000000000e2/manifest.json: its parent bk-0000000000ee" "human output of a skipped manifest"
rm -rf "$nas/$uuid/$chain"/bk-0000000000e?

# ---- owners and checkpoints are not taken from a target ----
# api_as UID PATH : a GET as another user; prints the body, the status
# goes where http_status reads it.
api_as () {
    local out
    out=$(setpriv --reuid="$1" --regid="$1" --clear-groups \
          curl -sS -w '\n%{http_code}' --unix-socket "$VV_SOCK" "http://localhost$2") ||
        fail "curl as uid $1"
    printf '%s\n' "${out##*$'\n'}" > "$VV_TMP/http_status"
    printf '%s\n' "${out%$'\n'*}"
}
# sees UID : the ids of the backups that uid lists, sorted.
sees () {
    local b
    b=$(api_as "$1" /v1/backups)
    assert_eq "$(http_status)" 200 "status of the list of uid $1"
    jq -c 'map(.id) | sort' <<<"$b"
}
# fake_full UUID CHAIN ID JQ-FILTER : the manifest of a full backup of
# another domain, made from a good one and changed by JQ-FILTER.
fake_full () {
    mkdir -p "$nas/$1/$2/$3"
    jq --arg u "$1" --arg c "$2" --arg i "$3" '.domain.uuid = $u | .domain.name = "other"
        | .chain_id = $c | .id = $i | .type = "full" | .parent_id = null
        | .checkpoint = "virtvault-" + $i | del(.disks[].backing) | '"$4" "$good" \
        > "$nas/$1/$2/$3/manifest.json" || fail "jq"
}
reason_at () { jq -r --arg o "$1/manifest.json" '.skipped[] | select(.object == $o) | .reason' <<<"$j"; }
u2=0b3e2f4c-9d1a-4c47-8f3e-$(printf '%012x' $$)
# It says it is uid 1000's, of a domain the catalog does not know: it is
# the administrators' (uid 0) until assigned.
fake_full "$u2" ch-0000000000c2 bk-0000000000f2 '.owner_uid = 1000'
# It names the live checkpoint of another domain ($dom's newest).
live=virtvault-${ids[2]}
checkpoints_of "$dom" | grep -qx "$live" || fail "$dom has no checkpoint $live"
fake_full "$u2" ch-0000000000c3 bk-0000000000f3 ".checkpoint = \"$live\""
j=$(vv target import old --json) || fail "import of foreign owners: $j"
assert_eq "$(jq -c '{imported, known, skipped_total}' <<<"$j")" \
    '{"imported":1,"known":3,"skipped_total":1}' "import of a foreign owner and checkpoint"
assert_contains "$(reason_at "$u2/ch-0000000000c3/bk-0000000000f3")" \
    "field 'checkpoint' of $u2/ch-0000000000c3/bk-0000000000f3/manifest.json must be null or 'virtvault-bk-0000000000f3', not '$live'" \
    "reason of the forged checkpoint"
expect_failure vv show bk-0000000000f3
checkpoints_of "$dom" | grep -qx "$live" || fail "the import touched checkpoint $live"
assert_eq "$(vv show bk-0000000000f2 --json | jq -r .owner_uid)" 0 "owner of a backup of an unknown instance"
assert_eq "$(sees 1000)" '[]' "backups uid 1000 sees before the assignment"
api_as 1000 /v1/backups/bk-0000000000f2 >/dev/null
assert_eq "$(http_status)" 404 "uid 1000 asks for the imported backup"

# The administrators assign the instance (docs/catalog.md, "Owners");
# a later import gives it the catalog's owner, not the manifest's.
sqlite3 "$VV_STATE/catalog.db" "PRAGMA busy_timeout = 5000; BEGIN IMMEDIATE;
    UPDATE instances SET owner_uid = 1000 WHERE uuid = '$u2';
    UPDATE chains SET owner_uid = 1000 WHERE domain_uuid = '$u2';
    UPDATE backups SET owner_uid = 1000 WHERE domain_uuid = '$u2'; COMMIT;" >/dev/null ||
    fail "assigning instance $u2"
rm -rf "$nas/$u2/ch-0000000000c3"
fake_full "$u2" ch-0000000000c4 bk-0000000000f4 '.owner_uid = 4242 | .owner_name = "root" | .created_at = "2027-01-01T00:00:00Z"'
j=$(vv target import old --json) || fail "import into an assigned instance: $j"
assert_eq "$(jq -c '{imported, known, skipped_total}' <<<"$j")" \
    '{"imported":1,"known":4,"skipped_total":0}' "import into an assigned instance"
assert_eq "$(vv show bk-0000000000f4 --json | jq -r .owner_uid)" 1000 "owner of a backup of an assigned instance"
assert_eq "$(sees 1000)" '["bk-0000000000f2","bk-0000000000f4"]' "backups uid 1000 sees after the assignment"
assert_eq "$(sees 4242)" '[]' "backups uid 4242 sees"
api_as 4242 /v1/backups/bk-0000000000f4 >/dev/null
assert_eq "$(http_status)" 404 "uid 4242 asks for the backup its manifest gave him"
assert_eq "$(vv show bk-0000000000f4 --json | jq -r .owner_uid)" 1000 "owner of a backup whose manifest names root"
rm -rf "$nas/$u2"

# ---- admins only, and audited ----
st=$(setpriv --reuid=65534 --regid=65534 --clear-groups \
     curl -s -o /dev/null -w '%{http_code}' --unix-socket "$VV_SOCK" \
     -X POST http://localhost/v1/targets/old/import) || fail "curl as nobody"
assert_eq "$st" 403 "import by a non-admin"
expect_failure vv target import nosuch
assert_contains "$ERR" "no target named 'nosuch'" "import of an unknown target"
audit=$(sqlite3 "$VV_STATE/catalog.db" "SELECT uid || ' ' || result || ' ' || object || ' ' || ifnull(detail, '') FROM audit WHERE action = 'target.import' ORDER BY id" 2>/dev/null) ||
    fail "reading the audit log"
assert_contains "$audit" "0 ok old imported 3, known 0, skipped 0" "audit of the first import"
assert_contains "$audit" "65534 forbidden old" "audit of the refused import"

# ---- the next backup continues the imported chain ----
w "write -P 0x41 20M 2M"
TARGET=old backup_point incremental
assert_eq "$(jq -r .parent_id <<<"$LAST")" "${ids[2]}" "parent of the backup after the import"
assert_eq "$(jq -r .chain_pos <<<"$LAST")" 3 "position of the backup after the import"
assert_contains "$(jq -r .reason <<<"$LAST")" "incremental: 3rd since full ${ids[0]}" "reason of the backup after the import"
vv restore "${ids[3]}" --to "$VV_TMP/r3" --format raw >/dev/null || fail "restore ${ids[3]}"
cmp "$VV_TMP/r3/vda.raw" "$VV_TMP/ref-${ids[3]}.raw" || fail "restore of the backup after the import differs from the disk"
guest_flush "$dom" vda
"$QEMU_IMG" compare -U -q -f raw -F qcow2 "$VV_TMP/r3/vda.raw" "$DISK_vda" || fail "restore differs from the live disk"

exit 0
