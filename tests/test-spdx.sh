#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Every source file of the tree names its licence: an
# "SPDX-License-Identifier: LGPL-2.1-or-later" line in its first 5 lines
# (.c .h .sh .am .ac .in files), and LICENSE holds the licence's text.
# Needs neither root nor libvirt, so it does not source functions.sh.
set -u
: "${abs_top_srcdir:=$(cd "$(dirname "$0")/.." && pwd)}"
cd "$abs_top_srcdir" || { echo "FAIL: test-spdx: cannot enter $abs_top_srcdir" >&2; exit 1; }

id="SPDX-License-Identifier: LGPL-2.1-or-later"
pattern='\.(c|h|sh|am|ac|in)$'
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    files=$(git ls-files | grep -E "$pattern")
else
    # A release tarball: its files, less what autotools generate.
    files=$(find . -path ./build-aux -prune -o -path './_build*' -prune \
                -o -path ./autom4te.cache -prune -o -type f -print |
            sed 's|^\./||' | grep -E "$pattern" |
            grep -vE '(^|/)Makefile\.in$|^config\.h\.in$')
fi
[ -n "$files" ] || { echo "FAIL: test-spdx: no source files found under $abs_top_srcdir" >&2; exit 1; }

n=0 missing=0
while IFS= read -r f; do
    n=$((n + 1))
    if ! head -n 5 -- "$f" | grep -qF "$id"; then
        echo "missing '$id' in the first 5 lines: $f" >&2
        missing=$((missing + 1))
    fi
done <<<"$files"

grep -q "GNU LESSER GENERAL PUBLIC LICENSE" LICENSE 2>/dev/null &&
    grep -q "Version 2.1, February 1999" LICENSE ||
    { echo "FAIL: test-spdx: LICENSE does not hold the LGPL 2.1 text" >&2; exit 1; }

if [ $missing -gt 0 ]; then
    echo "FAIL: test-spdx: $missing of $n source files lack the SPDX line" >&2
    exit 1
fi
echo "$n source files name LGPL-2.1-or-later"
exit 0
