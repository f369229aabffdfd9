#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The examples keep working, and the daemon's config file is checked key
# by key:
# - every key the parser knows (virtvaultd --print-config-keys, read from
#   the parser's own table) is documented in examples/virtvaultd.conf, and
#   that file with every key uncommented is valid and means what it says;
# - a config setting every key to a valid value other than the default
#   starts the daemon, which shows (--check-config) and uses the values;
# - each bad value of each key is refused at start with the file, line and
#   key, and nothing is created;
# - examples/api-backup.sh backs up a domain through the API.
# The tables below need a valid and a bad value for every key: a key added
# to the parser without them fails this test.
source "${abs_top_srcdir:-$(dirname "$0")/..}/tests/functions.sh"

vvd="$abs_top_builddir/virtvaultd"
example="$abs_top_srcdir/examples/virtvaultd.conf"
full_state=$VV_TMP/full-state
nobody_uid=$(id -u nobody) || fail "no user 'nobody'"

# ---- the tables: key -> a valid value (not the default) and what
# --check-config then shows ----
declare -A valid shown
valid[state_dir]=$full_state;              shown[state_dir]=$full_state
valid[socket]=$full_state/api.sock;        shown[socket]=$full_state/api.sock
valid[connect]=qemu+unix:///system;        shown[connect]=qemu+unix:///system
valid[workers]=3;                          shown[workers]=3
valid[admin_uids]="nobody ,1001";          shown[admin_uids]="$nobody_uid, 1001"
valid[default_target]=offsite;             shown[default_target]=offsite
valid[max_chain]=9;                        shown[max_chain]=9
valid[manual_limit]=0;                     shown[manual_limit]=0
valid[scheduler_max_concurrent]=5;         shown[scheduler_max_concurrent]=5
valid[connections_per_uid]=8;              shown[connections_per_uid]=8
valid[audit_retention_days]=0;             shown[audit_retention_days]=0
valid[job_retention_days]=30;              shown[job_retention_days]=30
valid[run_retention_days]=36500;           shown[run_retention_days]=36500

# key <TAB> bad value <TAB> what the message must say besides file:line: key
long=$(printf 'a%.0s' $(seq 1 120))
longer=$(printf 'q%.0s' $(seq 1 1100))
many=$(seq -s, 1000 1064)
bad_values="\
state_dir	relative/dir	must be an absolute path
socket	api.sock	must be an absolute path
socket	/tmp/$long	is longer than 107 bytes
connect	qemu:///$longer	the URI is longer than 1024 bytes
workers	0	is not a number of workers from 1 to 64
workers	65	is not a number of workers from 1 to 64
workers	two	is not a number of workers from 1 to 64
workers	-1	is not a number of workers from 1 to 64
admin_uids	nosuchuser-$$	no user named 'nosuchuser-$$'
admin_uids	$many	more than 64 admin uids
admin_uids	12x	'12x' is not a uid
default_target	../etc	target name
max_chain	0	is not a number of incremental backups per chain from 1 to 1000
max_chain	1001	is not a number of incremental backups per chain from 1 to 1000
manual_limit	10001	is not a number from 0 to 10000
manual_limit	four	is not a number from 0 to 10000
scheduler_max_concurrent	0	is not a number from 1 to 64
scheduler_max_concurrent	65	is not a number from 1 to 64
connections_per_uid	0	is not a number of connections from 1 to 224
connections_per_uid	225	is not a number of connections from 1 to 224
audit_retention_days	36501	is not a number of days from 0 to 36500
job_retention_days	-1	is not a number of days from 0 to 36500
run_retention_days	ninety	is not a number of days from 0 to 36500"

# ---- the key list comes from the parser ----
keys=$("$vvd" --print-config-keys) || fail "virtvaultd --print-config-keys"
grep -qx state_dir <<<"$keys" || fail "--print-config-keys does not list state_dir: '$keys'"
for k in $keys; do
    [ -n "${valid[$k]+set}" ] || fail "config key '$k' has no valid value in test-examples.sh: add one"
    grep -q "^$k	" <<<"$bad_values" || fail "config key '$k' has no bad value in test-examples.sh: add one"
    grep -q "^#$k = " "$example" || fail "config key '$k' is not documented as '#$k = ...' in examples/virtvaultd.conf"
done
for k in "${!valid[@]}"; do
    grep -qx "$k" <<<"$keys" || fail "test-examples.sh has a value for '$k', which virtvaultd does not know"
done

# ---- the example, every key uncommented ----
sed -E 's/^#([a-z_]+ = )/\1/' "$example" > "$VV_TMP/example.conf"
out=$("$vvd" --check-config "$VV_TMP/example.conf" 2>&1) || fail "the example config with every key set is refused: $out"
for k in $keys; do
    assert_eq "$(grep -c "^$k = " "$VV_TMP/example.conf")" 1 "lines setting $k in the uncommented example"
    assert_eq "$(grep "^$k = " <<<"$out")" "$(grep "^$k = " "$VV_TMP/example.conf")" "effective $k of the example"
done

# The defaults, to see that every valid value above differs from them.
: > "$VV_TMP/empty.conf"
defaults=$("$vvd" --check-config "$VV_TMP/empty.conf") || fail "--check-config of an empty file"

# ---- every key set to a valid value ----
# default_target must exist: add it with a first daemon on the same state.
VV_STATE=$full_state
start_daemon
mkdir -p "$VV_TMP/offsite"
vv target add offsite --url "file://$VV_TMP/offsite" >/dev/null || fail "target add offsite"
stop_daemon

full=$VV_TMP/full.conf
for k in $keys; do printf '%s = %s\n' "$k" "${valid[$k]}"; done > "$full"
out=$("$vvd" --check-config "$full" 2>&1) || fail "--check-config of a config with every key valid: $out"
assert_eq "$(wc -l <<<"$out")" "$(wc -l <<<"$keys")" "lines of --check-config"
for k in $keys; do
    assert_eq "$(grep "^$k = " <<<"$out")" "$k = ${shown[$k]}" "--check-config of $k"
    [ "$(grep "^$k = " <<<"$defaults")" != "$k = ${shown[$k]}" ] ||
        fail "the valid value of $k in test-examples.sh is the default: it proves nothing"
done

# The daemon runs with nothing but that file: its state dir, socket,
# connection, workers and default target.
VV_SOCK=$full_state/api.sock
start_daemon_args --config "$full"
grep -q "serving $VV_SOCK (state $full_state, libvirt qemu+unix:///system, 3 workers)" "$VV_STATE/daemon.log" ||
    fail "the daemon's start-up line does not show the config: $(tail -n 3 "$VV_STATE/daemon.log")"

dom=vvtest-ex-$$
make_domain "$dom" 32
guest_write "$dom" vda "write -P 0x42 0 1M"
out=$("$abs_top_srcdir/examples/api-backup.sh" "$dom" "$VV_SOCK") || fail "api-backup.sh: $out"
id=$(sed -n 's/^backup \(bk-[0-9a-f]*\) started.*/\1/p' <<<"$out")
[ -n "$id" ] || fail "api-backup.sh did not say which backup it started: $out"
grep -q "^$id  full  completed" <<<"$out" || fail "api-backup.sh did not list the completed backup: $out"
assert_eq "$(vv show "$id" --json | jq -r .status)" completed "status of the example's backup"
assert_eq "$(vv show "$id" --json | jq -r .target)" offsite "target of a backup that names none (default_target)"
[ -n "$(target_files "$VV_TMP/offsite")" ] || fail "nothing stored on the default target 'offsite'"

# Bad arguments: a clear failure, not a hang.
expect_failure "$abs_top_srcdir/examples/api-backup.sh" "nosuch-$$" "$VV_SOCK"
assert_contains "$ERR" "nosuch-$$" "example's error message"
stop_daemon

# ---- each bad value is refused at start, naming file, line and key ----
# refused CONF LINE KEY TEXT : the daemon (and --check-config) refuse CONF
# with "CONF:LINE: KEY" and TEXT, and create nothing.
bad_state=$VV_TMP/bad-state
refused () {
    local conf=$1 line=$2 key=$3 text=$4 st err
    err=$(timeout 20 "$vvd" --foreground --config "$conf" 2>&1 >/dev/null); st=$?
    [ $st -ne 124 ] || fail "virtvaultd started with $key = '${5:-}' (line $line of $conf)"
    [ $st -ne 0 ] || fail "virtvaultd exited 0 with $key = '${5:-}'"
    assert_contains "$err" "$conf:$line: $key" "message for a bad $key"
    assert_contains "$err" "$text" "message for a bad $key"
    [ ! -e "$bad_state" ] || fail "virtvaultd created $bad_state although the config was bad ($key)"
    expect_failure "$vvd" --check-config "$conf"
    assert_contains "$ERR" "$conf:$line: $key" "--check-config message for a bad $key"
}

# bad_config KEY VALUE : the valid config with KEY's line set to VALUE,
# its state and socket under $bad_state; prints the line number.
bad_config () {
    local k n=0 line=0
    for k in $keys; do
        n=$((n + 1))
        case $k in
            "$1") printf '%s = %s\n' "$k" "$2"; line=$n ;;
            state_dir) printf 'state_dir = %s\n' "$bad_state" ;;
            socket) printf 'socket = %s\n' "$bad_state/api.sock" ;;
            *) printf '%s = %s\n' "$k" "${valid[$k]}" ;;
        esac
    done > "$VV_TMP/bad.conf"
    echo $line
}

n_bad=0
while IFS=$'\t' read -r k value text; do
    line=$(bad_config "$k" "$value")
    refused "$VV_TMP/bad.conf" "$line" "$k" "$text" "$value"
    n_bad=$((n_bad + 1))
done <<<"$bad_values"
# Every key's valid line is accepted in the same frame (no key is refused
# whatever its value).
bad_config none none >/dev/null
"$vvd" --check-config "$VV_TMP/bad.conf" >/dev/null || fail "the frame of the bad configs is itself bad"

# Errors not tied to one key's value.
for k in $keys; do
    bad_config "$k" "" >/dev/null
    line=$(grep -n "^$k = $" "$VV_TMP/bad.conf" | cut -d: -f1)
    refused "$VV_TMP/bad.conf" "$line" "$k" "the value is empty"
done
bad_config none none >/dev/null
echo "frobnicate = 1" >> "$VV_TMP/bad.conf"
line=$(wc -l < "$VV_TMP/bad.conf")
refused "$VV_TMP/bad.conf" "$line" frobnicate "unknown key; the keys are $(echo $keys | sed 's/ /, /g')"
for k in $keys; do
    bad_config none none >/dev/null
    again=$(grep "^$k = " "$VV_TMP/bad.conf")
    printf '%s\n' "$again" >> "$VV_TMP/bad.conf"
    refused "$VV_TMP/bad.conf" "$(wc -l < "$VV_TMP/bad.conf")" "$k" "set twice"
done
bad_config none none >/dev/null
echo "workers 3" >> "$VV_TMP/bad.conf"
expect_failure "$vvd" --check-config "$VV_TMP/bad.conf"
assert_contains "$ERR" "$VV_TMP/bad.conf:$(wc -l < "$VV_TMP/bad.conf"): expected 'key = value', got 'workers 3'" "line without ="

# A valid name that is not a target: only the catalog knows, at start.
sed -i 's/^default_target = .*/default_target = nosuch/' "$full"
err=$(timeout 20 "$vvd" --foreground --config "$full" 2>&1 >/dev/null); st=$?
[ $st -ne 124 ] || fail "virtvaultd started with default_target = nosuch"
[ $st -ne 0 ] || fail "virtvaultd exited 0 with default_target = nosuch"
assert_contains "$err" "default_target 'nosuch' does not exist" "unknown default target"
echo "$n_bad bad values refused"
exit 0
