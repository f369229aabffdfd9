#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Crash injection: virtvaultd is killed with SIGKILL at a seeded random
# moment of a full backup, an incremental backup, a policy run (backup and
# retention), a delete or an in-place restore.  After each restart:
#  - every backup the catalog calls completed restores bit-identical to
#    the disk content recorded when it completed;
#  - the target holds no object the catalog does not know as completed,
#    and no temporary or partial name;
#  - libvirt holds no virtvault checkpoint but the newest completed
#    point's;
#  - the domain's disks are consistent: each holds the content it had
#    before the operation or (in-place restore) the restored one, all
#    disks the same;
#  - no restore staging directory is left next to the images;
#  - the next backup completes and restores bit-identical.
# One domain and one daemon state go through all seeds, so state
# accumulates as it would on a real host.
#
#   VV_CRASH_SEEDS       number of seeds (default 10)
#   VV_CRASH_FIRST_SEED  first seed (default 1)
#   VV_CRASH_KEEP_GOING  1: a failed seed is reported, its findings are
#                        accepted as the new baseline and the next seed
#                        runs (for long runs); the test still fails.
#
# Each seed prints one line: seed, operation, moment, outcome.  A failing
# seed is rerun alone with VV_CRASH_FIRST_SEED=N VV_CRASH_SEEDS=1 (the
# state then is the one right after set-up).
source "${abs_top_srcdir:-$(dirname "$0")/..}/tests/functions.sh"

seeds=${VV_CRASH_SEEDS:-10}
first=${VV_CRASH_FIRST_SEED:-1}
keep_going=${VV_CRASH_KEEP_GOING:-0}
[[ $seeds =~ ^[0-9]+$ && $seeds -ge 1 ]] || fail "VV_CRASH_SEEDS must be a positive number"
[[ $first =~ ^[0-9]+$ ]] || fail "VV_CRASH_FIRST_SEED must be a number"

now_ms () { echo $(( $(date +%s%N) / 1000000 )); }

# ---- the domain: persistent (an in-place restore needs that), two disks
# in two directories ----

dom=vvtest-crash-inj-$$
declare -A size_of=([vda]=32 [vdb]=16)
make_persistent_domain "$dom" "${size_of[vda]}" "${size_of[vdb]}" images2
mkdir -p "$VV_TMP/refs"
for d in vda vdb; do truncate -s "${size_of[$d]}M" "$VV_TMP/ref-$d.raw"; done
uuid=$(virsh domuuid "$dom" | sed -n 1p)

domstate () { virsh domstate "$dom" 2>/dev/null | sed -n 1p; }
ensure_running () {
    [ "$(domstate)" = running ] && return 0
    virsh start "$dom" >/dev/null || fail "cannot start $dom again"
}

# w DEV 'write ...' : a guest write, applied to the reference too.
w () { guest_write "$dom" "$1" "$2"; ref_write "$VV_TMP/ref-$1.raw" "$2"; }
# Random guest writes (a few 64 KiB .. 1 MiB writes, some zeroes).
random_writes () {
    local n=$((RANDOM % 4 + 1)) i d off len
    for (( i = 0; i < n; i++ )); do
        d=vda; [ $((RANDOM % 3)) -eq 0 ] && d=vdb
        len=$(( (RANDOM % 16 + 1) * 65536 ))
        off=$(( (RANDOM % (size_of[$d] * 16)) * 65536 ))
        (( off + len <= size_of[$d] << 20 )) || off=$(( (size_of[$d] << 20) - len ))
        if [ $((RANDOM % 5)) -eq 0 ]; then
            w "$d" "write -z $off $len"
        else
            echo "# write $d $off $len" >> "$VV_TMP/writes.log"; w "$d" "write -P $((RANDOM % 255 + 1)) $off $len"
        fi
    done
}
# The current content is the reference of a backup made now.
keep_ref () { cp --sparse=always "$VV_TMP/ref-vda.raw" "$VV_TMP/refs/$1-vda.raw"
              cp --sparse=always "$VV_TMP/ref-vdb.raw" "$VV_TMP/refs/$1-vdb.raw"; }

# ---- the daemon, a policy for retention runs ----

start_daemon --test-clock=2026-11-24T03:00:00Z
vv policy create crashpol --schedule daily --at 02:00 --max-chain 2 --retention 1 --device all >/dev/null ||
    fail "policy create"
vv policy attach crashpol "$dom" >/dev/null || fail "policy attach"

restart_daemon () {
    start_daemon --test-clock="$(date -u -d "@$clock" +%Y-%m-%dT%H:%M:%SZ)"
}
clock=$(date -u -d 2026-11-24T03:00:00Z +%s)

# Waits until no job is pending or running (a policy run the crash
# interrupted may run again at start-up).
wait_idle () {
    local i n
    for i in $(seq 1 1200); do
        n=$(vv job list --json | jq '[.[] | select(.status=="pending" or .status=="running")] | length') ||
            fail "job list"
        [ "$n" -eq 0 ] && return 0
        sleep 0.1
    done
    fail "jobs still running after 120 s: $(vv job list --json | jq -c '[.[] | select(.status=="pending" or .status=="running")]')"
}

backups_json () { vv list "$dom" --json || fail "list"; }
completed_ids () { backups_json | jq -r '.[] | select(.status=="completed") | .id'; }

# ---- checks; each finding goes to $problems ----

problems=()
problem () { problems+=("$*"); }
declare -A accepted     # findings accepted after a failed seed (keep-going)

# A restore reads the backup's catalog record and the objects of its
# chain: when neither changed since a restore of it was compared with the
# reference, the same restore gives the same bytes, so it is not run
# again (that keeps a seed within seconds).  Anything changed, and it is.
declare -A verified
fingerprint () {  # ID
    local rec chain
    rec=$(vv show "$1" --json) || return 1
    chain=$(jq -r .chain_id <<<"$rec")
    { jq -c 'del(.job_id)' <<<"$rec"
      (cd "$VV_STATE/backups/$uuid/$chain" 2>/dev/null && find . -type f | sort | xargs -r sha256sum)
    } | sha256sum | cut -d' ' -f1
}
check_restores () {
    local id d fp
    for id in $(completed_ids); do
        [ -n "${accepted[bad:$id]:-}" ] && continue
        if [ ! -f "$VV_TMP/refs/$id-vda.raw" ]; then
            problem "completed backup $id has no reference (it completed at an unknown moment)"
            continue
        fi
        fp=$(fingerprint "$id")
        [ -n "$fp" ] && [ "${verified[$id]:-}" = "$fp" ] && continue
        rm -rf "$VV_TMP/r"
        if ! vv restore "$id" --to "$VV_TMP/r" --format raw >"$VV_TMP/r.out" 2>&1; then
            problem "completed backup $id does not restore: $(tail -n 1 "$VV_TMP/r.out")"
            accepted[bad:$id]=1
            continue
        fi
        for d in vda vdb; do
            cmp -s "$VV_TMP/refs/$id-$d.raw" "$VV_TMP/r/$d.raw" ||
                { problem "restored $d of completed backup $id differs at $(cmp "$VV_TMP/refs/$id-$d.raw" "$VV_TMP/r/$d.raw" | head -c 200) ($(vv show "$id" --json | jq -r '.type + ": " + .reason + " disks " + ([.disks[].name]|join(","))'); files $(ls "$VV_TMP/r"))"; accepted[bad:$id]=1; }
        done
        [ -n "${accepted[bad:$id]:-}" ] || verified[$id]=$fp
    done
    rm -rf "$VV_TMP/r"
}

check_target () {
    local f id ok known
    known=" $(completed_ids | tr '\n' ' ') "
    while read -r f; do
        [ -n "$f" ] || continue
        [ -n "${accepted[obj:$f]:-}" ] && continue
        case $f in
            */.*) problem "temporary object on the target: $f"; accepted[obj:$f]=1; continue ;;
        esac
        id=$(cut -d/ -f4 <<<"$f")
        case $known in
            *" $id "*) ;;
            *) problem "object of no completed backup on the target: $f"; accepted[obj:$f]=1 ;;
        esac
    done < <(target_files "$VV_STATE/backups")
    for id in $known; do
        ok=$(find "$VV_STATE/backups/$uuid" -path "*/$id/manifest.json" | wc -l)
        [ "$ok" -eq 1 ] || [ -n "${accepted[bad:$id]:-}" ] ||
            { problem "completed backup $id has no manifest on the target"; accepted[bad:$id]=1; }
    done
}

check_checkpoints () {
    local newest cps c
    # The list is newest first (created_at, then catalog order).
    newest=$(backups_json | jq -r '[.[] | select(.status=="completed")][0].id // empty')
    cps=$(checkpoints_of "$dom" | grep '^virtvault-')
    for c in $cps; do
        [ "$c" = "virtvault-$newest" ] && continue
        [ -n "${accepted[cp:$c]:-}" ] && continue
        problem "stale checkpoint $c in libvirt (newest completed point: ${newest:-none})"
        accepted[cp:$c]=1
    done
}

# same_disk DEV REF : the disk holds REF's content (flushed first when
# the domain runs).
same_disk () {
    local f=DISK_$1 u=
    if [ "$(domstate)" = running ]; then
        guest_flush "$dom" "$1"; u=-U
    fi
    "$QEMU_IMG" compare -q $u -f raw -F qcow2 "$2" "${!f}" 2>/dev/null
}

# check_disks [RESTORED_ID] : every disk holds the content from before the
# operation, or all hold RESTORED_ID's; the references follow.
check_disks () {
    local rid=${1:-} d f old=0 new=0
    for d in vda vdb; do
        if same_disk "$d" "$VV_TMP/ref-$d.raw"; then old=$((old + 1)); fi
        if [ -n "$rid" ] && same_disk "$d" "$VV_TMP/refs/$rid-$d.raw"; then new=$((new + 1)); fi
        if ! same_disk "$d" "$VV_TMP/ref-$d.raw" &&
           { [ -z "$rid" ] || ! same_disk "$d" "$VV_TMP/refs/$rid-$d.raw"; }; then
            problem "disk $d holds neither the content from before the operation nor the restored one"
        fi
    done
    # Each disk is old or new; all must be on one side.
    if [ -n "$rid" ] && [ $old -lt 2 ] && [ $new -lt 2 ] && [ $((old + new)) -ge 2 ]; then
        problem "half-swapped domain: $old disk(s) hold the old content, $new the restored one"
    fi
    if [ -n "$rid" ] && [ $new -eq 2 ]; then
        for d in vda vdb; do cp --sparse=always "$VV_TMP/refs/$rid-$d.raw" "$VV_TMP/ref-$d.raw"; done
    fi
    if [ ${#problems[@]} -gt 0 ] && [ "$keep_going" = 1 ]; then
        # Take the disks as they are as the new reference.
        for d in vda vdb; do
            f=DISK_$d
            [ "$(domstate)" = running ] && guest_flush "$dom" "$d"
            "$QEMU_IMG" convert -U -O raw "${!f}" "$VV_TMP/ref-$d.raw" || fail "re-baseline $d"
        done
    fi
}

check_staging () {
    local s
    for s in "$VV_TMP"/images/.virtvault-* "$VV_TMP"/images2/.virtvault-*; do
        [ -e "$s" ] || continue
        problem "restore staging directory left: $s"
        [ "$keep_going" = 1 ] && rm -rf "$s"
    done
}

# next_backup : a backup after the crash completes and restores
# bit-identical; prints its type.
next_backup () {
    local b id
    ensure_running
    random_writes
    b=$(vv backup "$dom" --all-disks --wait --json 2>&1) ||
        { problem "next backup failed: $b"; return 0; }
    id=$(jq -r .id <<<"$b")
    keep_ref "$id"
    rm -rf "$VV_TMP/r"
    vv restore "$id" --to "$VV_TMP/r" --format raw >/dev/null 2>&1 ||
        { problem "next backup $id does not restore"; accepted[bad:$id]=1; return 0; }
    for d in vda vdb; do
        cmp -s "$VV_TMP/refs/$id-$d.raw" "$VV_TMP/r/$d.raw" ||
            { problem "next backup $id: restored $d differs"; accepted[bad:$id]=1; }
    done
    rm -rf "$VV_TMP/r"
    [ -n "${accepted[bad:$id]:-}" ] || verified[$id]=$(fingerprint "$id")
    NEXT_TYPE=$(jq -r .type <<<"$b")
}

# ---- the operations; each starts in the background and sets OP_PID ----

# A backup of the kind asked; the CLI waits for it.
op_backup () {
    ensure_running
    random_writes
    vv backup "$dom" --all-disks --wait --json "$@" >"$VV_TMP/op.out" 2>&1 &
    OP_PID=$!
}
# A policy run: the clock moves a day; the run backs up and applies
# retention (retention 1 chain, max chain 2, manual limit 4).
op_policy () {
    ensure_running
    random_writes
    clock=$((clock + 86400))
    vv debug clock advance 1d >"$VV_TMP/op.out" 2>&1 || fail "clock advance"
    # The run is started by the scheduler; its backup (and retention)
    # happen now.
    OP_PID=
}
# Delete a random backup no other one is based on.
op_delete () {
    local ids
    ids=$(backups_json | jq -r '[.[] | select(.status=="completed")] as $c
        | $c[] | .id as $i | select(all($c[]; .parent_id != $i)) | .id')
    DEL_ID=$(shuf -n 1 --random-source=<(yes "$RANDOM") <<<"$ids")
    [ -n "$DEL_ID" ] || { OP_PID=; return; }
    # Found before the delete starts: a quick delete removes it at once.
    DEL_MF=$(find "$VV_STATE/backups/$uuid" -path "*/$DEL_ID/manifest.json")
    [ -n "$DEL_MF" ] || fail "no manifest of completed backup $DEL_ID"
    vv delete "$DEL_ID" >"$VV_TMP/op.out" 2>&1 &
    OP_PID=$!
}
# In-place restore of a random completed backup, the running domain
# stopped at once and started again.
op_restore () {
    ensure_running
    RESTORE_ID=$(completed_ids | shuf -n 1 --random-source=<(yes "$RANDOM"))
    [ -n "$RESTORE_ID" ] || { OP_PID=; return; }
    vv restore "$RESTORE_ID" --in-place --yes --force-stop --stop-timeout 0 --start \
        >"$VV_TMP/op.out" 2>&1 &
    OP_PID=$!
}

# spin_until CONDITION : evaluates CONDITION in a tight loop (a progress
# point passes within milliseconds) until it holds; false after 60 s.
spin_until () {
    local end=$((SECONDS + 60)) i
    while [ $SECONDS -lt $end ]; do
        for (( i = 0; i < 200; i++ )); do eval "$1" && return 0; done
    done
    return 1
}

ops=(full incremental policy delete restore)
declare -A dur          # measured duration of each operation, ms

run_op () {  # OP
    case $1 in
        full) op_backup --full ;;
        incremental) op_backup ;;
        policy) op_policy ;;
        delete) op_delete ;;
        restore) op_restore ;;
    esac
}

# Waits for an operation that is not killed; for a policy run until the
# run has a result.
finish_op () {  # OP
    local i r
    if [ -n "${OP_PID:-}" ]; then
        wait "$OP_PID" || fail "$1 failed: $(cat "$VV_TMP/op.out")"
    fi
    if [ "$1" = policy ]; then
        for i in $(seq 1 600); do
            r=$(vv policy runs crashpol --json | jq -r '.[0].result')
            [ "$r" != running ] && [ "$r" != null ] && break
            sleep 0.1
        done
        [ "$r" = ok ] || fail "policy run: $(vv policy runs crashpol --json | jq -c '.[0]')"
    fi
}
# References of backups that completed during an uninterrupted operation.
note_new_backups () {
    local id
    for id in $(completed_ids); do
        [ -f "$VV_TMP/refs/$id-vda.raw" ] || keep_ref "$id"
    done
}

# ---- set-up: each operation once, uninterrupted, timed ----

RANDOM=4242
problems=()
for op in full incremental policy incremental delete restore policy; do
    t0=$(now_ms)
    run_op "$op"
    finish_op "$op"
    dur[$op]=$(( $(now_ms) - t0 ))
    # Guest writes happen before the operation starts, so what completes
    # holds the content of now.
    note_new_backups
    [ "$op" = restore ] && check_disks "$RESTORE_ID"
    [ ${#problems[@]} -eq 0 ] || fail "set-up, after $op: ${problems[*]} $(cat "$VV_TMP/writes.log")"
done
echo "# measured ms: full ${dur[full]} incremental ${dur[incremental]} policy ${dur[policy]} delete ${dur[delete]} restore ${dur[restore]}"
check_restores; check_target; check_checkpoints; check_staging
[ ${#problems[@]} -eq 0 ] || fail "after set-up: ${problems[*]}"

# ---- the seeds ----

failed_seeds=()
for (( seed = first; seed < first + seeds; seed++ )); do
    RANDOM=$seed
    op=${ops[$((RANDOM % ${#ops[@]}))]}
    delay=$(( RANDOM * 32768 + RANDOM ))
    delay=$(( delay % (dur[$op] + 1) ))
    problems=()
    before_ids=" $(completed_ids | tr '\n' ' ') "
    RESTORE_ID= DEL_ID= DEL_MF=
    run_op "$op"
    moment="after ${delay} ms"
    if [ "$op" = delete ] && [ -n "$DEL_ID" ] && [ $((RANDOM % 2)) -eq 0 ]; then
        # The moment the manifest is gone: the delete is under way.
        moment="when its manifest is gone"
        mf=$DEL_MF
        spin_until '[ ! -e "$mf" ] || ! kill -0 $OP_PID 2>/dev/null' ||
            fail "seed $seed: the manifest of $DEL_ID stayed for 60 s"
    elif [ "$op" = restore ] && [ -n "$RESTORE_ID" ] && [ $((RANDOM % 2)) -eq 0 ]; then
        # The moment the old image of vda is linked as 'previous': the
        # renames are next.
        moment="when vda's old image is linked"
        pv=$VV_TMP/images/.virtvault-restore-$RESTORE_ID-vda/previous
        spin_until '[ -e "$pv" ] || ! kill -0 $OP_PID 2>/dev/null' ||
            fail "seed $seed: no link $pv within 60 s"
    else
        sleep "$(printf '%d.%03d' $((delay / 1000)) $((delay % 1000)))"
    fi
    kill -9 "$VV_PID"
    wait "$VV_PID" 2>/dev/null
    outcome=killed
    if [ -n "${OP_PID:-}" ]; then
        if wait "$OP_PID"; then
            outcome="done before the kill"
        elif ! grep -q "talking to virtvaultd\|cannot reach virtvaultd" "$VV_TMP/op.out"; then
            # Not the lost connection: the operation itself failed.
            outcome="failed before the kill: $(tail -n 1 "$VV_TMP/op.out")"
        fi
    fi
    restart_daemon
    wait_idle

    # What completed before the kill holds the content from before the
    # operation (no guest writes during it).
    for id in $(completed_ids); do
        case $before_ids in *" $id "*) continue ;; esac
        [ -f "$VV_TMP/refs/$id-vda.raw" ] || keep_ref "$id"
    done
    [ -n "$DEL_ID" ] && ! vv show "$DEL_ID" >/dev/null 2>&1 && outcome="$outcome, $DEL_ID deleted"

    check_restores
    check_target
    check_checkpoints
    check_staging
    check_disks "$RESTORE_ID"
    [ -n "$RESTORE_ID" ] && [ "$(domstate)" != running ] && outcome="$outcome, domain shut off"
    NEXT_TYPE=none
    next_backup
    check_checkpoints
    what=$op
    [ -n "$RESTORE_ID" ] && what="$op $RESTORE_ID"
    [ -n "$DEL_ID" ] && what="$op $DEL_ID"
    if [ ${#problems[@]} -eq 0 ]; then
        echo "seed $seed: $what, kill $moment: $outcome; next backup $NEXT_TYPE: ok"
    else
        echo "seed $seed: $what, kill $moment: $outcome: FAILED"
        printf '    %s\n' "${problems[@]}"
        failed_seeds+=("$seed")
        [ "$keep_going" = 1 ] || fail "seed $seed: ${problems[0]}"
        # An orphaned libvirt backup job would fail every later seed.
        if ! libvirt_job_idle "$dom"; then
            virsh domjobabort "$dom" >/dev/null 2>&1
            for (( i = 0; i < 300; i++ )); do libvirt_job_idle "$dom" && break; sleep 0.1; done
            libvirt_job_idle "$dom" || fail "seed $seed: the libvirt job of $dom cannot be aborted"
            echo "    (keep-going: aborted the libvirt job left on $dom)"
        fi
    fi
done
echo "# $((seeds - ${#failed_seeds[@]})) of $seeds seeds passed${failed_seeds:+; failed: ${failed_seeds[*]}}"
[ ${#failed_seeds[@]} -eq 0 ] || fail "seeds failed: ${failed_seeds[*]}"
exit 0
