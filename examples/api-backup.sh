#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Drives virtvaultd's JSON API with nothing but curl and jq, as a hosting
# panel or a hook script would: start a backup of a domain, poll its job
# until it ends, then list the domain's backups.
#
#   examples/api-backup.sh DOMAIN [SOCKET]
#
# SOCKET defaults to $VIRTVAULT_SOCKET, then /run/virtvault/virtvaultd.sock.
set -euo pipefail

domain=${1:?usage: api-backup.sh DOMAIN [SOCKET]}
sock=${2:-${VIRTVAULT_SOCKET:-/run/virtvault/virtvaultd.sock}}

call () {  # call METHOD PATH [JSON]: prints the body; on HTTP >= 400
          # prints the daemon's error message and exits
    local out code
    out=$(curl --silent --show-error --unix-socket "$sock" -w '\n%{http_code}' \
               -X "$1" ${3:+-H 'Content-Type: application/json' --data "$3"} \
               "http://localhost$2")
    code=${out##*$'\n'} out=${out%$'\n'*}
    if [ "$code" -ge 400 ]; then
        echo "$1 $2: $(jq -r .error.message <<<"$out" 2>/dev/null || echo "HTTP $code")" >&2
        exit 1
    fi
    printf '%s\n' "$out"
}

# 1. Start the backup; the daemon answers at once with the job.
started=$(call POST /v1/backups "$(jq -cn --arg d "$domain" '{domain: $d}')")
job=$(jq -r .job.id <<<"$started")
backup=$(jq -r .backup.id <<<"$started")
echo "backup $backup started as job $job"

# 2. Poll the job until it is no longer pending or running.
while :; do
    j=$(call GET "/v1/jobs/$job")
    status=$(jq -r .status <<<"$j")
    case $status in
        pending|running)
            jq -r '"  \(.status): \(.bytes_done) of \(.bytes_total) bytes"' <<<"$j"
            sleep 1 ;;
        *) break ;;
    esac
done
if [ "$status" != completed ]; then
    echo "backup $backup $status: $(jq -r .error <<<"$j")" >&2
    exit 1
fi

# 3. List the domain's backups.
call GET "/v1/backups?domain=$domain" |
    jq -r '.[] | "\(.id)  \(.type)  \(.status)  \(.size_bytes) bytes  \(.created_at)"'
