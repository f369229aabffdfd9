#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Runs the libFuzzer harnesses of a build configured with --enable-fuzzing
# (docs/fuzzing.md), each for a bounded time on its seed corpus.
#
#   tests/fuzz/run-fuzzers.sh BUILDDIR [SECONDS [PARALLEL]] [-- FUZZER...]
#
# SECONDS per harness (default 60), PARALLEL harnesses at once (default 2).
# New inputs the fuzzers find go to BUILDDIR/tests/fuzz/work/NAME/, crash
# inputs to BUILDDIR/tests/fuzz/crashes/NAME-crash-*, each run's output to
# BUILDDIR/tests/fuzz/NAME.log.  Prints one line per harness,
#   PASS: NAME: EXECS runs, N exec/s, cov: C
#   FAIL: NAME: ... followed by the sanitizer report and the crash input,
# and exits non-zero when any harness failed.
set -uo pipefail

[ $# -ge 1 ] || { sed -n 2,14p "$0" >&2; exit 2; }
build=$(cd "$1" && pwd) || exit 2
shift
seconds=60 parallel=2
[ $# -gt 0 ] && [ "$1" != -- ] && { seconds=$1; shift; }
[ $# -gt 0 ] && [ "$1" != -- ] && { parallel=$1; shift; }
[ $# -gt 0 ] && [ "$1" = -- ] && shift
fuzzers=("$@")
[ ${#fuzzers[@]} -gt 0 ] || fuzzers=(fuzz-manifest fuzz-qcow2 fuzz-api-request)

src=$(cd "$(dirname "$0")" && pwd)
dir=$build/tests/fuzz
mkdir -p "$dir/crashes" "$dir/work"
# fuzz-api-request keeps its catalog here; a crash cannot clean up after
# itself, this script does.
scratch=$(mktemp -d /dev/shm/virtvault-fuzz.XXXXXX) || exit 1
trap 'rm -rf "$scratch"' EXIT

# The seed corpora of a harness: its own, and shared test data.
seeds () {
    case $1 in
        fuzz-manifest) echo "$src/corpus-manifest $src/../data/manifests" ;;
        fuzz-qcow2) echo "$src/corpus-qcow2" ;;
        fuzz-api-request) echo "$src/corpus-api-request" ;;
    esac
}

options () {
    case $1 in
        fuzz-manifest) echo "-dict=$src/manifest.dict" ;;
    esac
}

run_one () {
    local name=$1 prog=$dir/$1
    [ -x "$prog" ] || { echo "$prog is not built (make -C $dir fuzzers)" >"$dir/$name.log"; return 1; }
    mkdir -p "$dir/work/$name"
    # shellcheck disable=SC2046
    TMPDIR=$scratch "$prog" -max_total_time="$seconds" -timeout=20 \
        -print_final_stats=1 -artifact_prefix="$dir/crashes/$name-" \
        $(options "$name") "$dir/work/$name" $(seeds "$name") \
        >"$dir/$name.log" 2>&1
}

report () {
    local name=$1 rc=$2 log=$dir/$1.log runs rate cov crash
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1)
    if [ "$rc" -eq 0 ]; then
        echo "PASS: $name: ${runs:-?} runs, ${rate:-?} exec/s, ${cov:-cov: ?}"
        return 0
    fi
    echo "FAIL: $name (exit $rc): ${runs:-?} runs, ${cov:-cov: ?}"
    grep -E -A 30 '^==[0-9]+==(ERROR|WARNING)|runtime error|deadly signal|ERROR: libFuzzer' "$log" | head -n 60
    crash=$(sed -n "s/.*Test unit written to \(.*\)/\1/p" "$log" | tail -1)
    if [ -n "$crash" ] && [ -f "$crash" ]; then
        echo "crash input ($(stat -c %s "$crash") bytes): $crash"
        echo "reproduce: $dir/$name $crash"
        od -A d -c "$crash" | head -n 40
    else
        tail -n 20 "$log"
    fi
    return 1
}

failed=0
pids=() names=()
for name in "${fuzzers[@]}"; do
    run_one "$name" &
    pids+=($!) names+=("$name")
    if [ ${#pids[@]} -ge "$parallel" ]; then
        wait "${pids[0]}"; rc=$?
        report "${names[0]}" $rc || failed=$((failed + 1))
        pids=("${pids[@]:1}") names=("${names[@]:1}")
    fi
done
for i in "${!pids[@]}"; do
    wait "${pids[$i]}"; rc=$?
    report "${names[$i]}" $rc || failed=$((failed + 1))
done
exit $((failed > 0))
