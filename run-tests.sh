#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Runs the whole test suite on a Debian 12 machine, as root: installs what
# is missing, builds (warnings are errors), starts libvirtd, runs
# `make check` (unit and integration tests against a real libvirtd and
# QEMU), the unit tests again under AddressSanitizer/UBSan and under
# valgrind, and `make distcheck`.  Ends with one line "N passed, N failed[, N skipped]".
# A skipped test counts as failed too (a missing component must not pass
# quietly): it appears in both numbers, and the script exits non-zero.
set -uo pipefail
cd "$(dirname "$0")"
top=$(pwd)
source scripts/setup-host.sh

[ "$(id -u)" -eq 0 ] || { echo "run-tests.sh must run as root (libvirt qemu:///system)" >&2; exit 1; }

vv_install_packages "${vv_test_packages[@]}" || exit 1
vv_start_libvirt || exit 1

pass=0 fail=0 skip=0
count () {  # count LOGFILE: add the automake summary of a test-suite.log
    local log=$1 n k
    [ -f "$log" ] || { fail=$((fail + 1)); echo "no test summary in $log" >&2; return; }
    for k in PASS FAIL SKIP XFAIL XPASS ERROR; do
        n=$(sed -n "s/^# $k: *\([0-9]*\)/\1/p" "$log" | head -1)
        n=${n:-0}
        case $k in
            PASS|XFAIL) pass=$((pass + n)) ;;
            FAIL|XPASS|ERROR) fail=$((fail + n)) ;;
            SKIP) skip=$((skip + n)); fail=$((fail + n)) ;;
        esac
    done
}

status=0

vv_say "building (warnings are errors)"
rm -rf _build
if ! vv_build _build --enable-werror; then
    echo "build failed" >&2
    echo "0 passed, 1 failed"
    exit 1
fi

vv_say "make check: unit and integration tests"
# Serial: one integration test restarts libvirtd, which would disturb
# tests running beside it.
(cd _build && make check) || status=1
[ $status -eq 0 ] || cat _build/tests/test-suite.log | tail -n 200
count _build/tests/test-suite.log

vv_say "unit tests under AddressSanitizer and UBSan"
rm -rf _build-asan
if vv_build _build-asan --enable-werror --enable-sanitizers; then
    (cd _build-asan/tests && make -j2 check TESTS="$(make -s print-unit-tests)") || status=1
    count _build-asan/tests/test-suite.log
else
    echo "sanitizer build failed" >&2
    status=1; fail=$((fail + 1))
fi

# ---- the daemon itself under AddressSanitizer/UBSan ----
# Integration tests against _build-asan's virtvaultd (make check there sets
# abs_top_builddir and VIRTVAULT_PLUGIN_PATH to _build-asan).
# tests/functions.sh sends the daemon's sanitizer reports (halt_on_error,
# leaks at its exit on SIGTERM; tests/lsan.supp for leaks that are not
# ours) to the test's scratch directory and fails the test on any report.
# A subset, to keep the time added to a few minutes: backup, restore to a
# directory and as a new domain, verify, corrupt chains, import.
# (test-incremental-chain and test-restore-inplace pass too, but add
# another 4 minutes.)
SANITIZED_DAEMON_TESTS="test-backup-restore.sh test-restore-corrupt.sh
    test-target-import.sh test-restore-as-new.sh"
vv_say "integration tests against the daemon under AddressSanitizer and UBSan"
if [ -x _build-asan/virtvaultd ]; then
    (cd _build-asan/tests && make check TESTS="$(echo $SANITIZED_DAEMON_TESTS)") || status=1
    count _build-asan/tests/test-suite.log
else
    echo "no sanitizer build of virtvaultd" >&2
    status=1; fail=$((fail + 1))
fi

vv_say "fuzzing: each harness of tests/fuzz for 60 s"
# One block (docs/fuzzing.md): a clang build with libFuzzer, ASan and
# UBSan; each harness counts as one test, its crash input is printed.
rm -rf _build-fuzz
if vv_build _build-fuzz CC=clang --enable-werror --enable-fuzzing &&
        make -s -C _build-fuzz/tests/fuzz fuzzers >/dev/null; then
    tests/fuzz/run-fuzzers.sh _build-fuzz 60 3 >_build-fuzz/fuzz.log 2>&1 || status=1
    cat _build-fuzz/fuzz.log
    pass=$((pass + $(grep -c '^PASS: ' _build-fuzz/fuzz.log)))
    fail=$((fail + $(grep -c '^FAIL: ' _build-fuzz/fuzz.log)))
else
    echo "fuzzing build failed (clang, libclang-rt-14-dev)" >&2
    status=1; fail=$((fail + 3))
fi

vv_say "unit tests under valgrind"
(cd _build/tests && make -j2 check TESTS="$(make -s print-unit-tests)" \
    LOG_COMPILER="valgrind --quiet --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite") || status=1
count _build/tests/test-suite.log

vv_say "make distcheck (unit tests)"
if ! (cd _build && make distcheck DISTCHECK_CONFIGURE_FLAGS=--enable-werror \
        TESTS="$(make -s -C tests print-unit-tests)" >distcheck.log 2>&1); then
    tail -n 40 _build/distcheck.log
    status=1; fail=$((fail + 1))
else
    pass=$((pass + 1))
fi

[ $fail -eq 0 ] || status=1
if [ $skip -gt 0 ]; then
    echo "$pass passed, $fail failed, $skip skipped"
else
    echo "$pass passed, $fail failed"
fi
exit $status
