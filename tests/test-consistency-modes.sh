#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Consistency modes.  The test domains run no guest agent:
#  - --quiesce fails cleanly: at once without an agent channel, from the
#    job when the channel exists but nobody answers; nothing left behind;
#  - --quiesce=try goes on and says so in the notes;
#  - --pause suspends the domain only while the checkpoint is created,
#    says for how long, and leaves it running.
source "${abs_top_srcdir:-$(dirname "$0")/..}/tests/functions.sh"

dom=vvtest-cm-$$
make_domain "$dom" 64
guest_write "$dom" vda "write -P 0x31 0 1M"
EXTRA_DEVICES="<channel type='unix'><target type='virtio' name='org.qemu.guest_agent.0'/></channel>"
agent=vvtest-cma-$$
make_domain "$agent" 64
guest_write "$agent" vda "write -P 0x32 0 1M"
start_daemon

nothing_left () {  # domain what
    assert_eq "$(checkpoints_of "$1")" "" "$2: checkpoints left behind"
    assert_eq "$(ls -A "$VV_STATE/run" 2>/dev/null)" "" "$2: scratch files left behind"
    libvirt_job_idle "$1" || fail "$2: libvirt job left running"
    assert_eq "$(virsh domstate "$1" | sed -n 1p)" running "$2: domain state"
}

# No agent channel: refused before anything is recorded.
expect_failure vv backup "$dom" --quiesce --wait
assert_contains "$ERR" "guest agent" "--quiesce without an agent channel"
assert_contains "$ERR" "--quiesce=try" "the error names the way out"
assert_eq "$(vv list --json | jq length)" 0 "backups after a refused --quiesce"
nothing_left "$dom" "--quiesce without a channel"

# A channel but no agent answering: the job fails, cleaned up.
expect_failure vv backup "$agent" --quiesce --wait
assert_contains "$ERR" "cannot freeze the guest filesystems" "--quiesce without an answering agent"
assert_eq "$(vv list "$agent" --json | jq -r '.[0].status')" failed "backup after a failed freeze"
nothing_left "$agent" "--quiesce without an answering agent"

# --quiesce=try: a crash-consistent backup, and the notes say so.
for d in "$dom" "$agent"; do
    b=$(vv backup "$d" --quiesce=try --wait --json) || fail "--quiesce=try on $d: $b"
    assert_eq "$(jq -r .status <<<"$b")" completed "--quiesce=try on $d"
    assert_contains "$(jq -r .notes <<<"$b")" "not quiesced" "notes of --quiesce=try on $d"
done

# --pause: running afterwards, the pause reported.
guest_write "$dom" vda "write -P 0x33 2M 1M"
b=$(vv backup "$dom" --pause --wait --json) || fail "--pause: $b"
assert_eq "$(jq -r .status <<<"$b")" completed "--pause"
assert_eq "$(jq -r .type <<<"$b")" incremental "--pause after a full"
[[ $(jq -r .notes <<<"$b") =~ paused\ for\ [0-9]+\.[0-9]{3}\ s ]] || fail "notes of --pause: $(jq -r .notes <<<"$b")"
assert_eq "$(virsh domstate "$dom" | sed -n 1p)" running "state after --pause"
id=$(jq -r .id <<<"$b")
assert_eq "$(checkpoints_of "$dom")" "virtvault-$id" "checkpoint after --pause"

# Both together.
b=$(vv backup "$dom" --pause --quiesce=try --full --wait --json) || fail "--pause --quiesce=try: $b"
assert_contains "$(jq -r .notes <<<"$b")" "paused for" "notes of --pause --quiesce=try"
assert_eq "$(virsh domstate "$dom" | sed -n 1p)" running "state after --pause --quiesce=try"

# Bad values are refused by the CLI and the API.
expect_failure vv backup "$dom" --quiesce=maybe
assert_contains "$ERR" "--quiesce" "bad --quiesce value"
out=$(api POST /v1/backups "{\"domain\":\"$dom\",\"quiesce\":\"always\"}")
assert_eq "$(http_status)" 400 "API quiesce 'always'"
out=$(api POST /v1/backups "{\"domain\":\"$dom\",\"mode\":\"partial\"}")
assert_eq "$(http_status)" 400 "API mode 'partial'"
out=$(api POST /v1/backups "{\"domain\":\"$dom\",\"max_chain\":0}")
assert_eq "$(http_status)" 400 "API max_chain 0"
exit 0
